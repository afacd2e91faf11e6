package limit

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func TestSource(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"203.0.113.7:51000", "203.0.113.7"},
		{"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:443", "2001:db8:1:3::/64"},
		{"[::ffff:203.0.113.7]:80", "::ffff:203.0.113.7"},
		{"not an address", "not an address"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.addr
		if got := Source(r); got != tc.want {
			t.Errorf("Source(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// TestKeyed: each key has its own budget, refilled at the rate; with
// room for no more keys, the idle ones are forgotten (looked for at most
// once a second), and while every key is in use a new one waits.
func TestKeyed(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	k := New(10, 3)
	for i := range 3 {
		if d := k.Take("a", now); d != 0 {
			t.Fatalf("attempt %d waits %v", i+1, d)
		}
	}
	if d := k.Take("a", now); d != 6*time.Second {
		t.Fatalf("a fourth attempt at once waits %v, want 6s (10 a minute)", d)
	}
	if d := k.Take("b", now); d != 0 {
		t.Fatalf("another key waits %v", d)
	}
	if d := k.Take("a", now.Add(6*time.Second)); d != 0 {
		t.Fatalf("after 6 s the attempt still waits %v", d)
	}

}

// TestKeyedTableFull: a full table forgets the sources not being limited
// (sources that tried once each do not lock out a technician signing in
// from a new address), and keeps those being limited.
func TestKeyedTableFull(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	k := New(20, 20) // the sign-in limit
	for i := range maxKeys {
		k.Take("once-"+strconv.Itoa(i), now)
	}
	if d := k.Take("technician", now.Add(2*time.Second)); d != 0 {
		t.Fatalf("a new source, with every other one at one attempt of 20, waits %v", d)
	}

	// Keys that each used their whole budget stay.
	k = New(10, 3)
	for i := range maxKeys {
		key := "busy-" + strconv.Itoa(i)
		for range 3 {
			k.Take(key, now)
		}
	}
	if d := k.Take("new", now); d != time.Minute {
		t.Fatalf("a new key with every slot busy waits %v, want a minute", d)
	}
	// Each gets an attempt back 6 s later (10 a minute). A look just
	// before finds none to forget; the next look comes a second after it,
	// not sooner.
	back := now.Add(6 * time.Second)
	if d := k.Take("new", back.Add(-100*time.Millisecond)); d != time.Minute {
		t.Fatalf("a new key just before the others had an attempt back waits %v, want a minute", d)
	}
	if d := k.Take("new", back.Add(100*time.Millisecond)); d != time.Minute {
		t.Fatalf("a new key 0.2 s after the last look waits %v, want a minute (no look yet)", d)
	}
	if d := k.Take("new", back.Add(time.Second)); d != 0 {
		t.Fatalf("a new key a second after the last look, the others no longer limited, waits %v", d)
	}
	if n := len(k.lims); n != 1 {
		t.Fatalf("%d keys kept, want only the newest one", n)
	}
}

// TestGiveBack: an attempt given back (a code that was right) leaves the
// budget as it was, even when it is given back a little later; one that
// was refused has nothing to give back.
func TestGiveBack(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	k := New(10, 3)
	for i := range 3 {
		d, giveBack := k.Reserve("a", now)
		if d != 0 {
			t.Fatalf("attempt %d waits %v", i+1, d)
		}
		giveBack()
	}
	for i := range 3 {
		if d := k.Take("a", now); d != 0 {
			t.Fatalf("after three attempts given back, attempt %d waits %v", i+1, d)
		}
	}
	d, giveBack := k.Reserve("a", now)
	if d != 6*time.Second {
		t.Fatalf("a fourth attempt at once waits %v, want 6s", d)
	}
	giveBack()
	if d := k.Take("a", now); d != 6*time.Second {
		t.Fatalf("after giving back a refused attempt, the next waits %v, want 6s", d)
	}
}
