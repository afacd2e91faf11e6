package input

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/host/capture"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	xtest.Cleanup()
	os.Exit(code)
}

// TestMoveShowsAtOnce checks that a technician's pointer move reaches the
// picture as fast as a paint: the capturer learns of it from the X server
// at once, as of a mouse's move, where a warped pointer waits for its slow
// check.
func TestMoveShowsAtOnce(t *testing.T) {
	const w, h = 320, 240
	display := xtest.StartXvfb(t, w, h)
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	in := New(nil, func() (int, int, int, int) { return 0, 0, w, h })
	c, err := capture.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 6 {
		settle(t, c)
		res := make(chan time.Time, 1)
		go func() {
			changed, err := c.WaitChange(context.Background(), 2*time.Second)
			if err != nil || !changed {
				t.Errorf("WaitChange after a move = %v, %v; want true", changed, err)
			}
			res <- time.Now()
		}()
		time.Sleep(30 * time.Millisecond)
		moved := time.Now()
		if err := in.Apply(protocol.InputEvent{Kind: protocol.InputMove, X: 100 + 20*i, Y: 120}); err != nil {
			t.Fatal(err)
		}
		if took := (<-res).Sub(moved); took > 100*time.Millisecond {
			t.Errorf("move %d: the capturer saw the pointer move after %v, want within 100ms", i, took)
		}
	}
}

// settle captures until the screen stays still.
func settle(t *testing.T, c capture.Capturer) {
	t.Helper()
	for range 5 {
		if _, err := c.Capture(); err != nil {
			t.Fatal(err)
		}
		changed, err := c.WaitChange(context.Background(), 150*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if !changed {
			return
		}
	}
	t.Fatal("the screen keeps changing with nothing drawing")
}

// TestButtonUpOutsideDisplay: a button held down is let go even when the
// release comes with a point outside the shared display (the user made the
// screen smaller during a drag, the technician's console still had the
// old size): refusing it would leave the user's mouse button held down.
// A press outside the display is still refused.
func TestButtonUpOutsideDisplay(t *testing.T) {
	const w, h = 320, 240
	display := xtest.StartXvfb(t, w, h)
	t.Setenv("DISPLAY", display)
	wit := xtest.StartInputWitness(t, display)
	in := New(nil, func() (int, int, int, int) { return 0, 0, w, h })

	if err := in.Apply(protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 100, Y: 80}); err != nil {
		t.Fatal(err)
	}
	wit.Wait(t, `^button 1 down 100 80$`, 5*time.Second)
	in.Apply(protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: false, X: 1500, Y: 900})
	wit.Wait(t, `^button 1 up \d+ \d+$`, 5*time.Second)

	if err := in.Apply(protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 1500, Y: 900}); err == nil {
		t.Error("a press outside the display was taken")
	}
	if err := in.Apply(protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: false, X: 1500, Y: 900}); err == nil {
		t.Error("a release outside the display of a button not held was taken")
	}
	time.Sleep(300 * time.Millisecond)
	for _, l := range wit.Lines() {
		if strings.HasPrefix(l, "button 1 down") && l != "button 1 down 100 80" {
			t.Fatalf("a press outside the display went in: %q", l)
		}
	}
}
