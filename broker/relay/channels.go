package relay

import (
	"errors"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/protocol"
)

// dropNoticeEvery limits how often a viewer is told its input was refused.
const dropNoticeEvery = 2 * time.Second

// sendHost forwards a message to the host's control or input channel.
func (s *Session) sendHost(input bool, data []byte) error {
	s.mu.Lock()
	dc := s.hostControl
	if input {
		dc = s.hostInput
	}
	s.mu.Unlock()
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return errors.New("host not connected")
	}
	return dc.Send(data)
}

// releaseAll tells the host to let go of every key and button.
func (s *Session) releaseAll() {
	msg, _ := protocol.InputEvent{Kind: protocol.InputReleaseAll}.MarshalBinary()
	s.sendHost(true, msg)
}

// fromHostControl relays what the host says: its displays to every viewer,
// its clipboard only to viewers in control.
func (s *Session) fromHostControl(data []byte) {
	msg, err := protocol.DecodeControl(data)
	if err != nil {
		s.cfg.Logger.Warn("host sent a bad control message", "err", err)
		return
	}
	s.mu.Lock()
	if msg.Type == protocol.ControlDisplays {
		s.displays = data
	}
	viewers := make([]*Viewer, 0, len(s.viewers))
	for v := range s.viewers {
		viewers = append(viewers, v)
	}
	s.mu.Unlock()
	for _, v := range viewers {
		if msg.Type == protocol.ControlClipboard && !v.controlling.Load() {
			continue
		}
		if v.control.ReadyState() == webrtc.DataChannelStateOpen {
			v.control.Send(data)
		}
	}
}

// fromControl handles a viewer's control message: the broker answers
// requests for control itself and forwards the rest to the host only while
// the viewer is in control.
func (v *Viewer) fromControl(data []byte) {
	msg, err := protocol.DecodeControl(data)
	if err != nil {
		v.drop("The control message was refused: " + err.Error())
		return
	}
	switch msg.Type {
	case protocol.ControlMode:
		if msg.Enabled && !v.opts.CanControl {
			v.sendControl(protocol.ControlMessage{Type: protocol.ControlMode, Enabled: false, Reason: "This session is view-only for you."})
			return
		}
		if was := v.controlling.Swap(msg.Enabled); was && !msg.Enabled {
			v.s.releaseAll()
		}
		v.s.cfg.Logger.Info("viewer control", "viewer", v.opts.Name, "enabled", msg.Enabled)
		v.sendControl(protocol.ControlMessage{Type: protocol.ControlMode, Enabled: msg.Enabled})
	case protocol.ControlClipboard, protocol.ControlClipboardRequest, protocol.ControlDisplaySelect:
		if !v.controlling.Load() {
			v.drop("Take control to use the clipboard or switch displays.")
			return
		}
		if err := v.s.sendHost(false, data); err != nil {
			v.drop("The user's computer is not connected.")
		}
	default:
		// Unknown types are skipped: a newer console may send more.
	}
}

// fromInput forwards a viewer's input to the host, if the viewer is in
// control and the event is well formed.
func (v *Viewer) fromInput(data []byte) {
	if !v.controlling.Load() {
		v.drop("This session is view-only: take control to use the mouse and keyboard.")
		return
	}
	if _, err := protocol.DecodeInput(data); err != nil {
		v.drop("An input event was refused: " + err.Error())
		return
	}
	v.s.sendHost(true, data)
}

// stopControl ends the viewer's control, releasing what it held.
func (v *Viewer) stopControl() {
	if v.controlling.Swap(false) {
		v.s.releaseAll()
	}
}

// drop counts a refused message and tells the viewer, at most every
// dropNoticeEvery.
func (v *Viewer) drop(reason string) {
	n := v.dropped.Add(1)
	v.mu.Lock()
	now := time.Now()
	if now.Sub(v.lastNotice) < dropNoticeEvery {
		v.mu.Unlock()
		return
	}
	v.lastNotice = now
	v.mu.Unlock()
	v.sendControl(protocol.ControlMessage{Type: protocol.ControlInputDropped, Count: int(n), Reason: reason})
}

// Dropped counts the viewer's refused messages.
func (v *Viewer) Dropped() uint64 { return v.dropped.Load() }

func (v *Viewer) sendControl(m protocol.ControlMessage) {
	data, err := protocol.EncodeControl(m)
	if err != nil || v.control.ReadyState() != webrtc.DataChannelStateOpen {
		return
	}
	v.control.Send(data)
}
