package rtc

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// sink records when each packet left the pacer.
type sink struct {
	mu   sync.Mutex
	seqs []uint16
	at   []time.Time
}

func (s *sink) Write(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seqs = append(s.seqs, h.SequenceNumber)
	s.at = append(s.at, time.Now())
	return h.MarshalSize() + len(payload), nil
}

func (s *sink) sent() ([]uint16, []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint16(nil), s.seqs...), append([]time.Time(nil), s.at...)
}

// frame writes n packets of 1000 bytes, as a frame of n KB.
func frame(t *testing.T, p *pacer, seq *uint16, n int) {
	t.Helper()
	for range n {
		*seq++
		if _, err := p.Write(&rtp.Header{SSRC: 7, SequenceNumber: *seq}, make([]byte, 1000-12), nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPacer(t *testing.T) {
	const bps = 800_000 // 100 KB/s: a 16 KB allowance
	p := newPacer(bps)
	defer p.Close()
	out := &sink{}
	p.AddStream(7, out)
	var seq uint16

	// A click's frame goes out before Write returns.
	frame(t, p, &seq, 5)
	if seqs, _ := out.sent(); len(seqs) != 5 {
		t.Fatalf("a 5 KB frame: %d of 5 packets sent at once", len(seqs))
	}

	// After a pause the allowance is whole again; a 66 KB frame sends
	// what it allows at once and the rest at 100 KB/s, in order.
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	frame(t, p, &seq, 66)
	if seqs, _ := out.sent(); len(seqs) < 5+15 || len(seqs) > 5+18 {
		t.Fatalf("a 66 KB frame after a pause: %d packets sent at once, want the 16 KB allowance", len(seqs)-5)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		seqs, at := out.sent()
		if len(seqs) == 5+66 {
			for i, s := range seqs {
				if s != uint16(i+1) {
					t.Fatalf("packet %d went out as number %d: the pacer reordered them", s, i+1)
				}
			}
			// 50 KB beyond the allowance at 100 KB/s: half a second.
			if took := at[len(at)-1].Sub(start); took < 400*time.Millisecond || took > 900*time.Millisecond {
				t.Fatalf("the 66 KB frame took %v to go out, want about 500 ms", took)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d packets sent after 3 s", len(seqs), 5+66)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A wider link: the rate follows the target.
	p.SetTargetBitrate(8 * bps)
	time.Sleep(100 * time.Millisecond)
	start = time.Now()
	frame(t, p, &seq, 200)
	for seqs, _ := out.sent(); len(seqs) < 5+66+200; seqs, _ = out.sent() {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("%d of 200 packets sent after 2 s at 1 MB/s", len(seqs)-5-66)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if took := time.Since(start); took > 400*time.Millisecond {
		t.Fatalf("200 KB at 1 MB/s took %v", took)
	}

	p.Close()
	if _, err := p.Write(&rtp.Header{SSRC: 7}, nil, nil); err == nil {
		t.Fatal("a closed pacer took a packet")
	}
}
