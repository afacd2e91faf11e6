package client

import (
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// Bounds of frame reassembly.
const (
	// maxFramePackets is the most packets a frame may take: a whole screen
	// of text is a few hundred KB.
	maxFramePackets = 512
	// maxPendingFrames is how many incomplete frames are kept waiting for
	// a late or resent packet; past it the one that waited longest is
	// given up.
	maxPendingFrames = 8
	// doneFrames is how many completed frames are remembered, so that a
	// packet arriving twice (late, then resent) does not make its frame
	// twice.
	doneFrames = 16
)

// frameAssembler puts VP8 frames back together from their RTP packets.
// Each frame is assembled on its own, by its timestamp, and handed on as
// soon as it is whole: a frame that lost a packet for good never holds
// back the frames after it, above all the keyframe asked for to recover
// from the loss. A client that decodes only keyframes, as this one does,
// needs no order between frames.
type frameAssembler struct {
	pending map[uint32]*partialFrame // by RTP timestamp
	done    [doneFrames]uint32       // timestamps of the latest completed frames
	ndone   int                      // how many frames completed
	pushed  uint64                   // packets pushed so far
}

type partialFrame struct {
	packets  map[uint16][]byte // VP8 payloads by sequence number
	first    uint16            // sequence number of the frame's first packet, if seen
	last     uint16            // sequence number of its last packet, if seen
	hasFirst bool
	hasLast  bool
	tooLarge bool   // given up: more than maxFramePackets
	touched  uint64 // a.pushed when a packet last came for it
}

func newFrameAssembler() *frameAssembler {
	return &frameAssembler{pending: map[uint32]*partialFrame{}}
}

// push adds a packet and returns the frame it completes, or nil.
func (a *frameAssembler) push(pkt *rtp.Packet) []byte {
	a.pushed++
	var vp8 codecs.VP8Packet
	payload, err := vp8.Unmarshal(pkt.Payload)
	if err != nil || a.completed(pkt.Timestamp) {
		return nil // not VP8, or a frame already made
	}
	f := a.pending[pkt.Timestamp]
	if f == nil {
		a.evict()
		f = &partialFrame{packets: map[uint16][]byte{}}
		a.pending[pkt.Timestamp] = f
	}
	f.touched = a.pushed
	if f.tooLarge {
		return nil
	}
	if len(f.packets) == maxFramePackets {
		f.tooLarge, f.packets = true, nil // given up; kept so its other packets are dropped too
		return nil
	}
	f.packets[pkt.SequenceNumber] = payload
	// A frame starts with the start of partition 0 (RFC 7741 4.4) and ends
	// with the packet that has the marker bit.
	if vp8.S == 1 && vp8.PID == 0 {
		f.first, f.hasFirst = pkt.SequenceNumber, true
	}
	if pkt.Marker {
		f.last, f.hasLast = pkt.SequenceNumber, true
	}
	frame := f.complete()
	if frame != nil {
		delete(a.pending, pkt.Timestamp)
		a.done[a.ndone%doneFrames] = pkt.Timestamp
		a.ndone++
	}
	return frame
}

func (a *frameAssembler) completed(ts uint32) bool {
	for i := range min(a.ndone, doneFrames) {
		if a.done[i] == ts {
			return true
		}
	}
	return false
}

// complete returns the frame's bytes once every packet from its first to
// its last is there, nil before.
func (f *partialFrame) complete() []byte {
	if !f.hasFirst || !f.hasLast {
		return nil
	}
	n := int(f.last-f.first) + 1 // sequence numbers wrap at 2^16
	if n > len(f.packets) {
		return nil
	}
	size := 0
	for i := range n {
		p, ok := f.packets[f.first+uint16(i)]
		if !ok {
			return nil
		}
		size += len(p)
	}
	frame := make([]byte, 0, size)
	for i := range n {
		frame = append(frame, f.packets[f.first+uint16(i)]...)
	}
	return frame
}

// evict makes room for one more frame by giving up the one that waited
// longest without a packet.
func (a *frameAssembler) evict() {
	if len(a.pending) < maxPendingFrames {
		return
	}
	var oldest uint32
	at := a.pushed + 1
	for ts, f := range a.pending {
		if f.touched < at {
			oldest, at = ts, f.touched
		}
	}
	delete(a.pending, oldest)
}
