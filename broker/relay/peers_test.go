package relay

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
)

// testViewer is a viewer's peer connected to a relay, for tests.
type testViewer struct {
	v        *Viewer
	pc       *webrtc.PeerConnection
	control  *webrtc.DataChannel
	input    *webrtc.DataChannel
	modes    chan protocol.ControlMessage
	displays chan protocol.ControlMessage
	others   chan protocol.ControlMessage // the rest, such as clipboard answers and refusals
}

// connectViewer connects a viewer's peer to s, its input channel open.
func connectViewer(t *testing.T, s *Session, opts ViewerOptions) *testViewer {
	t.Helper()
	v, offer, err := s.AddViewer(opts)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := plainAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	control, input, err := rtc.DataChannels(pc)
	if err != nil {
		t.Fatal(err)
	}
	tv := &testViewer{v: v, pc: pc, control: control, input: input,
		modes: make(chan protocol.ControlMessage, 64), displays: make(chan protocol.ControlMessage, 64),
		others: make(chan protocol.ControlMessage, 256)}
	control.OnMessage(func(m webrtc.DataChannelMessage) {
		msg, err := protocol.DecodeControl(m.Data)
		var to chan protocol.ControlMessage
		switch {
		case err != nil:
			return
		case msg.Type == protocol.ControlMode:
			to = tv.modes
		case msg.Type == protocol.ControlDisplays:
			to = tv.displays
		default:
			to = tv.others
		}
		select {
		case to <- msg:
		default:
		}
	})
	opened := make(chan struct{})
	input.OnOpen(func() { close(opened) })
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	sdp, err := rtc.GatherComplete(pc, answer)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetAnswer(sdp); err != nil {
		t.Fatal(err)
	}
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("the viewer's input channel did not open")
	}
	return tv
}

// takeControl asks for control and waits for the relay to give it.
func (tv *testViewer) takeControl(t *testing.T) {
	t.Helper()
	take, _ := protocol.EncodeControl(protocol.ControlMessage{Type: protocol.ControlMode, Enabled: true})
	if err := tv.control.Send(take); err != nil {
		t.Fatal(err)
	}
	for deadline := time.After(10 * time.Second); ; {
		select {
		case m := <-tv.modes:
			if m.Enabled {
				return
			}
		case <-deadline:
			t.Fatal("control was not given")
		}
	}
}

// hostInputLog is what reaches a host's input channel, in order.
type hostInputLog struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (l *hostInputLog) all() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.msgs...)
}

// connectHostInput connects a host peer to s and returns the log of its
// input channel, once that channel is open.
func connectHostInput(t *testing.T, s *Session) *hostInputLog {
	t.Helper()
	l := &hostInputLog{}
	connectHostChannel(t, s, true, func(_ *webrtc.DataChannel, m webrtc.DataChannelMessage) {
		l.mu.Lock()
		l.msgs = append(l.msgs, m.Data)
		l.mu.Unlock()
	})
	return l
}

// connectHostChannel connects a host peer to s and returns its input
// channel (input true) or its control channel, once open; onMessage is
// given what reaches that channel.
func connectHostChannel(t *testing.T, s *Session, input bool, onMessage func(*webrtc.DataChannel, webrtc.DataChannelMessage)) *webrtc.DataChannel {
	t.Helper()
	host, err := plainAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	control, hostInput, err := rtc.DataChannels(host)
	if err != nil {
		t.Fatal(err)
	}
	dc := control
	if input {
		dc = hostInput
	}
	dc.OnMessage(func(m webrtc.DataChannelMessage) { onMessage(dc, m) })
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	connectHostPeer(t, s, host)
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatalf("the host's %s channel did not open", dc.Label())
	}
	return dc
}

// heldAfterRelease reports the first key the host was told to press after
// it was last told to let go of everything, if any.
func heldAfterRelease(msgs [][]byte) (key []byte, ok bool) {
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if len(m) == 1 && m[0] == protocol.InputReleaseAll {
			break
		}
		if ev, err := protocol.DecodeInput(m); err == nil && ev.Kind == protocol.InputKey && ev.Down {
			key = m
		}
	}
	return key, key != nil
}

// TestNoInputAfterRelease: a key a technician pressed just as they lose
// control (the user takes control back or pauses, a colleague takes it)
// is never passed on after the relay told the user's computer to let go:
// it would stay held down there, under the colleague's typing or the
// user's own. The key is held up on its way (another viewer's input is
// going to the host) while control goes.
func TestNoInputAfterRelease(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(a, b *testViewer)
	}{
		{"revoked", func(a, b *testViewer) { a.v.SetGrants([]string{protocol.PermView}, false) }},
		{"paused", func(a, b *testViewer) { a.v.SetGrants([]string{protocol.PermView, protocol.PermControl}, true) }},
		{"taken", func(a, b *testViewer) { b.v.s.takeControl(b.v, 0) }},
		{"given up", func(a, b *testViewer) { a.v.stopControl() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t)
			host := connectHostInput(t, s)
			a := connectViewer(t, s, ViewerOptions{CanControl: true, Name: "dana", ID: "v_1"})
			b := connectViewer(t, s, ViewerOptions{CanControl: true, Name: "lee", ID: "v_2"})
			a.v.SetGrants([]string{protocol.PermView, protocol.PermControl}, false)
			b.v.SetGrants([]string{protocol.PermView, protocol.PermControl}, false)
			a.takeControl(t)

			s.inputMu.Lock()
			key, _ := protocol.InputEvent{Kind: protocol.InputKey, Code: "ShiftLeft", Down: true}.MarshalBinary()
			if err := a.input.Send(key); err != nil {
				s.inputMu.Unlock()
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond) // the key is on its way
			lost := make(chan struct{})
			go func() {
				defer close(lost)
				tc.lose(a, b)
			}()
			time.Sleep(200 * time.Millisecond)
			s.inputMu.Unlock()
			<-lost
			time.Sleep(300 * time.Millisecond)
			if k, held := heldAfterRelease(host.all()); held {
				t.Fatalf("%v reached the user's computer after it was told to let go: %v", k, host.all())
			}
		})
	}
}

// TestNothingPassesAfterCutOff: once the broker cuts a technician off (an
// admin disabled the account, their key was revoked), nothing of theirs
// reaches the user's computer any more, in the moments before their
// connection is closed: what they held is let go, and their input and
// clipboard are refused.
func TestNothingPassesAfterCutOff(t *testing.T) {
	s := newSession(t)
	host := connectHostInput(t, s)
	a := connectViewer(t, s, ViewerOptions{CanControl: true, Name: "dana", ID: "v_1"})
	a.v.SetGrants([]string{protocol.PermView, protocol.PermControl, protocol.PermClipboard}, false)
	a.takeControl(t)
	key, _ := protocol.InputEvent{Kind: protocol.InputKey, Code: "ShiftLeft", Down: true}.MarshalBinary()
	if err := a.input.Send(key); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(host.all()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("input in control did not reach the host")
		}
	}

	a.v.CutOff("An administrator disabled the account.")
	if err := a.input.Send(key); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if k, held := heldAfterRelease(host.all()); held {
		t.Fatalf("%v was held on the user's computer after the technician was cut off", k)
	}
	if a.v.allowed(protocol.PermClipboard) || a.v.allowed(protocol.PermView) {
		t.Error("a technician cut off is still allowed what the user granted them")
	}
}
