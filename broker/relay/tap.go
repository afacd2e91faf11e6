package relay

import (
	"github.com/pion/rtp"

	"github.com/tether-support/tether/internal/protocol"
)

// Tap sees what the relay forwards, for the session recording. Its methods
// are called on the relay's forwarding paths and must not block.
type Tap interface {
	// VideoPacket is each RTP packet of the host's video; the tap must
	// copy what it keeps.
	VideoPacket(pkt *rtp.Packet)
	// Input is each input event forwarded to the host, by kind only.
	Input(viewer string, kind byte)
	// Control is each control message forwarded: clipboard both ways,
	// display choice, control taken or given up. viewer is who sent it,
	// or, from the host, the one it went to alone ("" for everyone allowed).
	Control(viewer string, fromHost bool, m protocol.ControlMessage)
}

func (s *Session) tapVideo(pkt *rtp.Packet) {
	if s.cfg.Tap != nil {
		s.cfg.Tap.VideoPacket(pkt)
	}
}

func (v *Viewer) tapInput(kind byte) {
	if t := v.s.cfg.Tap; t != nil {
		t.Input(v.opts.Name, kind)
	}
}

func (v *Viewer) tapControl(m protocol.ControlMessage) {
	if t := v.s.cfg.Tap; t != nil {
		t.Control(v.opts.Name, false, m)
	}
}

// tapHostControl records what the host said, sent to the viewer named to
// alone, or to everyone allowed it when to is "".
func (s *Session) tapHostControl(m protocol.ControlMessage, to string) {
	if t := s.cfg.Tap; t != nil {
		t.Control(to, true, m)
	}
}
