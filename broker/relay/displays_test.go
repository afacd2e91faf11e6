package relay

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
)

// TestDisplaysOnlyToViewersWhoMaySee: the user's monitors (their names and
// sizes) go only to technicians the user lets see the screen: one not
// allowed yet, or while the user paused, learns nothing of them, and gets
// the latest list as soon as they may see.
func TestDisplaysOnlyToViewersWhoMaySee(t *testing.T) {
	s := newSession(t)
	host, err := plainAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	hostControl, _, err := rtc.DataChannels(host)
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan struct{})
	hostControl.OnOpen(func() { close(opened) })
	connectHostPeer(t, s, host)
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("the host's control channel did not open")
	}
	sendDisplays := func(name string) {
		t.Helper()
		msg, _ := protocol.EncodeControl(protocol.ControlMessage{Type: protocol.ControlDisplays,
			Displays: []protocol.Display{{Index: 0, Name: name, Width: 1920, Height: 1080, Primary: true}}})
		if err := hostControl.Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	none := func(a *testViewer, when string) {
		t.Helper()
		select {
		case m := <-a.displays:
			t.Fatalf("%s, the technician was sent the user's displays: %+v", when, m.Displays)
		case <-time.After(500 * time.Millisecond):
		}
	}
	got := func(a *testViewer, name string) {
		t.Helper()
		select {
		case m := <-a.displays:
			if len(m.Displays) != 1 || m.Displays[0].Name != name {
				t.Fatalf("displays %+v, want %s", m.Displays, name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the technician allowed to see was not sent the displays (%s)", name)
		}
	}

	sendDisplays("DP-1")
	a := connectViewer(t, s, ViewerOptions{Name: "dana", ID: "v_1"})
	none(a, "joining before consent")
	sendDisplays("DP-2")
	none(a, "before consent")
	a.v.SetGrants([]string{protocol.PermView}, false)
	got(a, "DP-2")
	sendDisplays("DP-3")
	got(a, "DP-3")
	a.v.SetGrants([]string{protocol.PermView}, true)
	sendDisplays("HDMI-1")
	none(a, "paused")
	a.v.SetGrants([]string{protocol.PermView}, false)
	got(a, "HDMI-1")
}
