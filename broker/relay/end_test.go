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
	host, err := plainAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	_, hostInput, err := rtc.DataChannels(host)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 16)
	hostInput.OnMessage(func(m webrtc.DataChannelMessage) { got <- m.Data })
	hostOpened := make(chan struct{})
	hostInput.OnOpen(func() { close(hostOpened) })
	connectHostPeer(t, s, host)

	v, offer, err := s.AddViewer(ViewerOptions{CanControl: true, Name: "dana", ID: "u_1"})
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := plainAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { viewer.Close() })
	control, input, err := rtc.DataChannels(viewer)
	if err != nil {
		t.Fatal(err)
	}
	modes := make(chan protocol.ControlMessage, 16)
	control.OnMessage(func(m webrtc.DataChannelMessage) {
		if msg, err := protocol.DecodeControl(m.Data); err == nil && msg.Type == protocol.ControlMode {
			modes <- msg
		}
	})
	opened := make(chan struct{})
	input.OnOpen(func() { close(opened) })
	if err := viewer.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	answer, err := viewer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	sdp, err := rtc.GatherComplete(viewer, answer)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetAnswer(sdp); err != nil {
		t.Fatal(err)
	}
	v.SetGrants([]string{protocol.PermView, protocol.PermControl}, false)
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("the viewer's input channel did not open")
	}
	take, _ := protocol.EncodeControl(protocol.ControlMessage{Type: protocol.ControlMode, Enabled: true})
	if err := control.Send(take); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-modes:
		if !m.Enabled {
			t.Fatalf("control refused: %s", m.Reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to taking control")
	}

	// Input for a host whose channel is not open yet is refused: on a
	// busy machine the host's side can open after the technician's.
	select {
	case <-hostOpened:
	case <-time.After(10 * time.Second):
		t.Fatal("the host's input channel did not open")
	}
	key, _ := protocol.InputEvent{Kind: protocol.InputKey, Code: "KeyA", Down: true}.MarshalBinary()
	if err := input.Send(key); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("input in control did not reach the host")
	}
	s.End("The technician ended the session.")
	if err := input.Send(key); err != nil {
		t.Fatal(err)
	}
	for deadline := time.After(500 * time.Millisecond); ; {
		select {
		case m := <-got:
			if len(m) != 1 || m[0] != protocol.InputReleaseAll { // letting go is always fine
				t.Fatalf("input reached the host after the session ended: %v", m)
			}
		case <-deadline:
			return
		}
	}
}
