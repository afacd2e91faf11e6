package client

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/tether-support/tether/internal/rtc/rtctest"
)

// vp8Stream packetizes frames as the host's video track does (pion's VP8
// payloader, 1200-byte packets), starting at sequence number seq.
type vp8Stream struct{ p rtp.Packetizer }

func newVP8Stream(seq uint16) *vp8Stream {
	return &vp8Stream{rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{}, rtp.NewFixedSequencer(seq), 90000)}
}

// frame returns a frame of n bytes and its packets; key sets the VP8
// keyframe bit (0 in the tag's lowest bit).
func (s *vp8Stream) frame(n int, key bool) ([]byte, []*rtp.Packet) {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	data[0] |= 1
	if key {
		data[0] &^= 1
	}
	return data, s.p.Packetize(data, 3000) // 30 fps
}

func pushAll(t *testing.T, a *frameAssembler, pkts []*rtp.Packet) [][]byte {
	t.Helper()
	var out [][]byte
	for _, p := range pkts {
		if f := a.push(p); f != nil {
			out = append(out, f)
		}
	}
	return out
}

func TestFramesReassembleAcrossSequenceWrap(t *testing.T) {
	s := newVP8Stream(65530) // the second frame's packets wrap to 0
	a := newFrameAssembler()
	for i, size := range []int{300, 5000, 1, 20000, 1190} {
		want, pkts := s.frame(size, i == 0)
		got := pushAll(t, a, pkts)
		if len(got) != 1 || !bytes.Equal(got[0], want) {
			t.Fatalf("frame %d (%d bytes in %d packets): got %d frames, want it once, byte for byte", i, size, len(pkts), len(got))
		}
	}
	if len(a.pending) != 0 {
		t.Errorf("%d frames left pending after complete frames", len(a.pending))
	}
}

// A packet lost for good must not hold back the keyframe asked for after
// it: on a still screen nothing else comes to push the broken frame out.
func TestKeyframeAfterAFrameThatLostAPacket(t *testing.T) {
	s := newVP8Stream(100)
	a := newFrameAssembler()
	delta, lossy := s.frame(4000, false)
	lost := lossy[1]
	if got := pushAll(t, a, append(lossy[:1:1], lossy[2:]...)); len(got) != 0 {
		t.Fatalf("a frame missing a packet came out: %d frames", len(got))
	}
	key, pkts := s.frame(6000, true)
	got := pushAll(t, a, pkts)
	if len(got) != 1 || !bytes.Equal(got[0], key) {
		t.Fatalf("keyframe after a broken frame: got %d frames, want the keyframe at once", len(got))
	}
	// The lost packet, resent, still completes its frame.
	if f := a.push(lost); !bytes.Equal(f, delta) {
		t.Fatalf("resent packet: got %d bytes, want the %d-byte frame it completes", len(f), len(delta))
	}
}

func TestFramesFromReorderedAndRepeatedPackets(t *testing.T) {
	s := newVP8Stream(7)
	a := newFrameAssembler()
	want, pkts := s.frame(8000, false)
	reordered := append([]*rtp.Packet(nil), pkts...)
	rand.Shuffle(len(reordered), func(i, j int) { reordered[i], reordered[j] = reordered[j], reordered[i] })
	got := pushAll(t, a, append(reordered, pkts...)) // then every packet again
	if len(got) != 1 || !bytes.Equal(got[0], want) {
		t.Fatalf("shuffled then repeated packets: got %d frames, want the frame once", len(got))
	}
	// A one-packet frame sent twice (the original late, then resent) is
	// one frame.
	_, one := s.frame(200, false)
	if got := pushAll(t, a, []*rtp.Packet{one[0], one[0]}); len(got) != 1 {
		t.Fatalf("a one-packet frame pushed twice made %d frames, want 1", len(got))
	}
}

func TestBrokenFramesAreBounded(t *testing.T) {
	s := newVP8Stream(1)
	a := newFrameAssembler()
	for range 100 {
		_, pkts := s.frame(3000, false)
		pushAll(t, a, pkts[1:]) // each loses its first packet
	}
	if len(a.pending) > maxPendingFrames {
		t.Fatalf("%d broken frames kept, want at most %d", len(a.pending), maxPendingFrames)
	}
	_, huge := s.frame((maxFramePackets+1)*1200, false)
	if got := pushAll(t, a, huge); len(got) != 0 {
		t.Fatalf("a frame of %d packets came out; the limit is %d", len(huge), maxFramePackets)
	}
	if n := len(a.pending[huge[0].Timestamp].packets); n != 0 {
		t.Fatalf("the oversized frame keeps %d packets", n)
	}
	want, pkts := s.frame(2500, true)
	if got := pushAll(t, a, pkts); len(got) != 1 || !bytes.Equal(got[0], want) {
		t.Fatalf("after broken and oversized frames: got %d frames, want the next one", len(got))
	}
}

// FuzzFrameAssembler: packets in any order, repeated or missing, never make
// the client's frame assembly panic, keep more than it may, or make a frame
// of more bytes than came.
func FuzzFrameAssembler(f *testing.F) {
	for _, seed := range rtctest.VP8PacketSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a := newFrameAssembler()
		came := 0
		for _, pkt := range rtctest.VP8Packets(data) {
			came += len(pkt.Payload) - 1
			if frame := a.push(pkt); len(frame) > came {
				t.Fatalf("a frame of %d bytes from %d bytes of payload", len(frame), came)
			}
			if len(a.pending) > maxPendingFrames {
				t.Fatalf("%d frames pending; the limit is %d", len(a.pending), maxPendingFrames)
			}
			for _, p := range a.pending {
				if len(p.packets) > maxFramePackets {
					t.Fatalf("a frame of %d packets kept; the limit is %d", len(p.packets), maxFramePackets)
				}
			}
		}
	})
}
