package relay

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tether-support/tether/internal/protocol"
)

// controlTap counts the control changes recorded, by viewer.
type controlTap struct {
	mu      sync.Mutex
	changes map[string]int
}

func (c *controlTap) VideoPacket(*rtp.Packet) {}
func (c *controlTap) Input(string, byte)      {}
func (c *controlTap) Control(viewer string, _ bool, m protocol.ControlMessage) {
	if m.Type != protocol.ControlMode {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.changes[viewer]++
}

// TestControlReleaseNotInControl: "control off" from a viewer that is not
// in control (a supervisor the user has not even let see), sent again and
// again, changes nothing, and is neither recorded nor logged: it filled
// the session's signed trail with releases the user never saw.
func TestControlReleaseNotInControl(t *testing.T) {
	tap := &controlTap{changes: map[string]int{}}
	s := newSessionWith(t, Config{Tap: tap})
	connectHostInput(t, s)
	sup := connectViewer(t, s, ViewerOptions{CanControl: false, Name: "supervisor", ID: "v_sup"})
	msg, err := protocol.EncodeControl(protocol.ControlMessage{Type: protocol.ControlMode, Enabled: false})
	if err != nil {
		t.Fatal(err)
	}
	for range 500 {
		if err := sup.control.Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	tap.mu.Lock()
	defer tap.mu.Unlock()
	if n := tap.changes["supervisor"]; n != 0 {
		t.Errorf("%d control changes recorded for a viewer never in control", n)
	}
}
