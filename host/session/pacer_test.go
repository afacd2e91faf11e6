package session

import (
	"testing"
	"time"
)

func TestPacer(t *testing.T) {
	const bps = 1_000_000
	t0 := time.Unix(1000, 0)
	var p pacer
	if w := p.wait(t0, bps); w != 0 {
		t.Fatalf("first frame waits %v, want 0", w)
	}
	// 25 000 bytes are 200 000 bits: 200 ms at 1 Mbit/s.
	p.sent(t0, bps, 25_000)
	if w := p.wait(t0.Add(50*time.Millisecond), bps); w != 150*time.Millisecond {
		t.Fatalf("50 ms after a 200 ms frame: wait %v, want 150ms", w)
	}
	// Half the bitrate repays half as fast.
	if w := p.wait(t0.Add(100*time.Millisecond), bps/2); w != 250*time.Millisecond {
		t.Fatalf("at half the bitrate: wait %v, want 250ms (125 000 bits left)", w)
	}
	// A quiet moment pays everything; it does not save up credit for a burst.
	if w := p.wait(t0.Add(10*time.Second), bps); w != 0 {
		t.Fatalf("after a quiet moment: wait %v, want 0", w)
	}
	p.sent(t0.Add(10*time.Second), bps, 1250)
	if w := p.wait(t0.Add(10*time.Second), bps); w != 10*time.Millisecond {
		t.Fatalf("right after a 10 ms frame: wait %v, want 10ms", w)
	}
}
