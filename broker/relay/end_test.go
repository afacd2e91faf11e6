package relay

import (
	"testing"
	"time"

	"github.com/tether-support/tether/internal/protocol"
)

// TestNothingPassesAfterEnd: once the session ends (its recording is
// finished next), a technician's input no longer reaches the user's
// computer: it would be in no record.
func TestNothingPassesAfterEnd(t *testing.T) {
	s := newSession(t)
	host := connectHostInput(t, s)
	a := connectViewer(t, s, ViewerOptions{CanControl: true, Name: "dana", ID: "u_1"})
	a.v.SetGrants([]string{protocol.PermView, protocol.PermControl}, false)
	a.takeControl(t)
	key, _ := protocol.InputEvent{Kind: protocol.InputKey, Code: "KeyA", Down: true}.MarshalBinary()
	if err := a.input.Send(key); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(host.all()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("input in control did not reach the host")
		}
	}
	before := len(host.all())
	s.End("The technician ended the session.")
	if err := a.input.Send(key); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	for _, m := range host.all()[before:] {
		if len(m) != 1 || m[0] != protocol.InputReleaseAll { // letting go is always fine
			t.Fatalf("input reached the host after the session ended: %v", m)
		}
	}
}
