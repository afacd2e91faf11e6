package record

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// testFrames makes n frames of various sizes, each different, the first a
// keyframe, and their packets with sequence numbers from seq+1.
func testFrames(n int, seq uint16) (frames [][]byte, packets [][]*rtp.Packet) {
	p := packetizer{seq: seq}
	for i := range n {
		f := vp8Frame(i == 0, 640, 480, 500+(i*2371)%6000)
		f[len(f)-1] = byte(i)
		frames = append(frames, f)
		packets = append(packets, p.packets(f, uint32(i*9000)))
	}
	return frames, packets
}

// takeAll returns the frames next hands out at now, and how many it gave up.
func takeAll(a *frameAssembler, now time.Time, giveUp bool) (frames [][]byte, lost int) {
	for {
		f, _, _, l := a.next(now, giveUp)
		lost += l
		if f == nil {
			return frames, lost
		}
		frames = append(frames, bytes.Join(f, nil))
	}
}

func sameFrames(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d frames, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: frame %d differs from the one sent (%d bytes, want %d)", what, i, len(got[i]), len(want[i]))
		}
	}
}

func TestFramesInOrderFromShuffledRepeatedPackets(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	frames, packets := testFrames(6, 65530) // the sequence numbers wrap
	var a frameAssembler
	var got [][]byte
	for i, pkts := range packets {
		// Each frame's packets backwards, then all of them again.
		for j := len(pkts) - 1; j >= 0; j-- {
			a.push(pkts[j], now)
		}
		for _, p := range pkts {
			a.push(p, now)
		}
		f, lost := takeAll(&a, now, false)
		if lost != 0 {
			t.Fatalf("frame %d: %d frames given up", i, lost)
		}
		got = append(got, f...)
	}
	sameFrames(t, "shuffled and repeated packets", got, frames)
	if len(a.waiting) != 0 {
		t.Errorf("%d packets left waiting", len(a.waiting))
	}
}

// A packet lost on the host's upload and resent after later frames: the
// frames after it wait, and all come out in order, none given up.
func TestFramesWaitForAResentPacket(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	frames, packets := testFrames(5, 100)
	resent := packets[1][1]
	var a frameAssembler
	var got [][]byte
	for i, pkts := range packets {
		for _, p := range pkts {
			if p != resent {
				a.push(p, now)
			}
		}
		f, lost := takeAll(&a, now, false)
		got = append(got, f...)
		if lost != 0 || i >= 1 && len(got) != 1 {
			t.Fatalf("after frame %d: %d frames out and %d given up, want only the first until the resent packet", i, len(got), lost)
		}
		now = now.Add(100 * time.Millisecond)
	}
	a.push(resent, now)
	f, lost := takeAll(&a, now, false)
	if lost != 0 {
		t.Fatalf("%d frames given up", lost)
	}
	sameFrames(t, "a packet resent 400 ms late", append(got, f...), frames)
}

// A packet lost for good: its frame is given up maxFrameWait later, and
// the frames behind it come out.
func TestAFrameMissingAPacketIsGivenUp(t *testing.T) {
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	frames, packets := testFrames(4, 7)
	var a frameAssembler
	for _, pkts := range packets {
		for _, p := range pkts {
			if p != packets[1][0] { // the second frame's first packet
				a.push(p, start)
			}
		}
	}
	if got, lost := takeAll(&a, start, false); len(got) != 1 || lost != 0 {
		t.Fatalf("%d frames, %d given up; want the first only", len(got), lost)
	}
	if got, lost := takeAll(&a, start.Add(maxFrameWait-time.Millisecond), false); len(got) != 0 || lost != 0 {
		t.Fatalf("before the wait is over: %d frames, %d given up; want none", len(got), lost)
	}
	got, lost := takeAll(&a, start.Add(maxFrameWait), false)
	if lost != 1 {
		t.Fatalf("once the wait is over: %d frames given up, want 1", lost)
	}
	sameFrames(t, "the frames behind the broken one", got, frames[2:])
	// The lost packet, come at last, makes nothing.
	a.push(packets[1][0], start.Add(2*maxFrameWait))
	if got, _ := takeAll(&a, start.Add(2*maxFrameWait), false); len(got) != 0 {
		t.Fatalf("a packet of a frame given up made %d frames", len(got))
	}
}

func TestWaitingPacketsAreBounded(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	p := packetizer{}
	head := p.packets(vp8Frame(true, 640, 480, 3000), 0)
	var a frameAssembler
	a.push(head[0], now)
	for _, pkt := range head[2:] { // its second packet never comes
		a.push(pkt, now)
	}
	n := 0
	for i := 1; len(a.waiting) <= maxWaitingPackets; i++ {
		for _, pkt := range p.packets(vp8Frame(false, 640, 480, 500), uint32(i*3000)) {
			a.push(pkt, now)
		}
		n++
	}
	got, lost := takeAll(&a, now, false)
	if lost != 1 || len(got) != n {
		t.Fatalf("with %d packets waiting behind a broken frame: %d given up and %d of %d frames out; want the broken one given up at once", maxWaitingPackets+1, lost, len(got), n)
	}
}

// The recorder, given a packet late and another twice: every frame is
// counted and written once, and no keyframe asked for.
func TestRecorderWaitsForAResentPacket(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	r, err := New(Config{Dir: t.TempDir(), Key: testKey(t), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int64
	var sealed *Manifest
	s, err := r.Start(Info{Session: "s_late", RequestKeyframe: func() { asked.Add(1) }, OnSealed: func(m *Manifest) { sealed = m }})
	if err != nil {
		t.Fatal(err)
	}
	_, packets := testFrames(30, 1000)
	late := packets[10][1]
	for i, pkts := range packets {
		for _, p := range pkts {
			if p != late {
				s.VideoPacket(p)
			}
		}
		if i == 12 {
			s.VideoPacket(late) // resent 200 ms later
		}
		if i == 20 {
			s.VideoPacket(packets[19][len(packets[19])-1]) // a frame's end twice
		}
		clock.Add(100 * time.Millisecond)
	}
	if err := s.Finish("done"); err != nil {
		t.Fatal(err)
	}
	if v := sealed.Video; v.Relayed != 30 || v.Written != 30 || v.Lost != 0 || asked.Load() != 0 {
		t.Errorf("a packet 200 ms late, another twice: %d frames relayed and %d written of 30, %d lost, %d keyframe requests; want all relayed and written once and none asked for (%+v)", v.Relayed, v.Written, v.Lost, asked.Load(), v)
	}
}

// A keyframe that takes seconds to arrive, in order, on a narrow link is
// not missing anything: it is not given up.
func TestASlowFrameIsNotGivenUp(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	p := packetizer{}
	key := vp8Frame(true, 640, 480, 6000)
	pkts := p.packets(key, 0)
	var a frameAssembler
	var got [][]byte
	for i, pkt := range pkts {
		a.push(pkt, now)
		f, lost := takeAll(&a, now, false)
		if lost != 0 {
			t.Fatalf("a frame still arriving, %d of its %d packets come: given up", i+1, len(pkts))
		}
		got = append(got, f...)
		now = now.Add(500 * time.Millisecond)
	}
	sameFrames(t, fmt.Sprintf("a frame arriving over %v", time.Duration(len(pkts)-1)*500*time.Millisecond), got, [][]byte{key})
}

// A packet lost for good just before the screen goes still: no packet
// comes after it to show the wait is over, and yet the frame is given up
// and a keyframe asked for; the frame behind it, a change from the lost
// one, waits for that keyframe.
func TestAFrameIsGivenUpOnAStillScreen(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	r, err := New(Config{Dir: t.TempDir(), Key: testKey(t), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan struct{}, 1)
	var sealed *Manifest
	s, err := r.Start(Info{Session: "s_still", RequestKeyframe: func() { asked <- struct{}{} }, OnSealed: func(m *Manifest) { sealed = m }})
	if err != nil {
		t.Fatal(err)
	}
	_, packets := testFrames(3, 0)
	for i, pkts := range packets {
		for j, p := range pkts {
			if i != 1 || j != 0 { // the second frame's first packet is lost
				s.VideoPacket(p)
			}
		}
	}
	clock.Add(maxFrameWait)
	select {
	case <-asked:
	case <-time.After(3 * time.Second):
		t.Fatal("a frame missing a packet on a still screen: no keyframe asked for within 3 s")
	}
	if err := s.Finish("done"); err != nil {
		t.Fatal(err)
	}
	if v := sealed.Video; v.Written != 1 || v.Lost != 1 || v.AfterLoss != 1 {
		t.Errorf("%d frames written, %d lost, %d after the loss; want 1, 1 and 1 (%+v)", v.Written, v.Lost, v.AfterLoss, v)
	}
}
