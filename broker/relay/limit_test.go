package relay

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/tether-support/tether/internal/protocol"
)

// TestViewerLimit: the host is told the least that a watching viewer's
// link carries; a viewer that pauses or leaves limits nothing.
func TestViewerLimit(t *testing.T) {
	s := newSession(t)
	video, fromRelay := connectHost(t, s)
	// The relay knows the host's video once a packet arrived.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s.mu.Lock()
		known := s.hostSSRC != 0
		s.mu.Unlock()
		if known {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no video reached the relay")
		}
		if err := video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1}, Payload: []byte{0x10, 0, 0, 0}}); err != nil {
			t.Fatal(err)
		}
	}
	viewer := func() *Viewer {
		v, _, err := s.AddViewer(ViewerOptions{Name: "dana"})
		if err != nil {
			t.Fatal(err)
		}
		v.SetGrants([]string{protocol.PermView}, false)
		return v
	}
	told := func(want float32, what string) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case p := <-fromRelay:
				if remb, ok := p.(*rtcp.ReceiverEstimatedMaximumBitrate); ok && remb.Bitrate > 0.99*want && remb.Bitrate < 1.01*want {
					return
				}
			case <-timeout:
				t.Fatalf("%s: the host was not told %.0f bit/s", what, want)
			}
		}
	}

	wide, narrow := viewer(), viewer()
	wide.setBitrate(8_000_000)
	told(8_000_000, "one viewer at 8 Mbit/s")
	narrow.setBitrate(500_000)
	told(500_000, "a second viewer at 500 kbit/s")
	narrow.SetGrants([]string{protocol.PermView}, true)
	told(8_000_000, "the narrow viewer paused")
	narrow.SetGrants([]string{protocol.PermView}, false)
	told(500_000, "the narrow viewer watches again")
	narrow.Close()
	told(8_000_000, "the narrow viewer left")
	wide.Close()
	told(noLimit, "no viewer left")
}

// TestRateMeter: what the host sent over the last whole second, from which
// a new viewer's congestion control starts; nothing after a quiet second.
func TestRateMeter(t *testing.T) {
	var m rateMeter
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	if got := m.rate(at); got != 0 {
		t.Errorf("before any packet: %d bit/s", got)
	}
	m.add(1000, at)
	for range 125 { // 125 KB by the end of the second (the last packet closes it): 1 Mbit/s
		at = at.Add(8 * time.Millisecond)
		m.add(1000, at)
	}
	if got := m.rate(at); got < 990_000 || got > 1_010_000 {
		t.Errorf("125 KB in a second: %d bit/s, want 1000000", got)
	}
	if got := m.rate(at.Add(2 * time.Second)); got != 0 {
		t.Errorf("after two quiet seconds: %d bit/s, want 0", got)
	}
}
