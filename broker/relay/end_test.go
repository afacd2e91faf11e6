package relay

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
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

// TestEndLeavesHostChannelsToTheHost: a technician whose files channel
// closes as the session ends (their transfer was stopped by it) does not
// close the user's side of it: the user's computer hears why the session
// ended over signalling and stops its transfers itself, and a channel
// closed before that would tell the user that the technician left. The
// relay's close closes it.
func TestEndLeavesHostChannelsToTheHost(t *testing.T) {
	s := newSession(t)
	host, err := plainAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	if _, _, err := rtc.DataChannels(host); err != nil {
		t.Fatal(err)
	}
	files := make(chan *webrtc.DataChannel, 1)
	host.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() == protocol.ChannelFiles {
			files <- dc
		}
	})
	connectHostPeer(t, s, host)
	a := connectViewer(t, s, ViewerOptions{CanControl: true, Name: "dana", ID: "u_1"})
	a.v.SetGrants([]string{protocol.PermView, protocol.PermFiles}, false)
	dc, err := a.pc.CreateDataChannel(protocol.ChannelFiles, nil)
	if err != nil {
		t.Fatal(err)
	}
	var hostSide *webrtc.DataChannel
	select {
	case hostSide = <-files:
	case <-time.After(10 * time.Second):
		t.Fatal("the files channel did not reach the host")
	}
	hostClosed := make(chan struct{})
	hostSide.OnClose(func() { close(hostClosed) })
	for deadline := time.Now().Add(10 * time.Second); hostSide.ReadyState() != webrtc.DataChannelStateOpen; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the host's files channel did not open")
		}
	}

	s.End("The technician ended the session.")
	dc.Close()
	select {
	case <-hostClosed:
		t.Fatal("the technician's channel closing as the session ended closed the user's side")
	case <-time.After(time.Second):
	}
	s.Close()
	select {
	case <-hostClosed:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay's close left the user's side open")
	}
}
