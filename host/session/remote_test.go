package session

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/host/clipboard"
	"github.com/tether-support/tether/host/consent"
	"github.com/tether-support/tether/host/input"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
	"github.com/tether-support/tether/internal/xtest"
)

// user answers consent requests as the test says.
type user struct{ grant []string }

func (u *user) Name() string { return "test user" }
func (u *user) Ask(context.Context, protocol.ConsentRequest) ([]string, error) {
	return u.grant, nil
}

// TestHostEnforcesConsent: the host checks the user's answers itself. Input,
// clipboard text and a display switch that reach it without the user's
// grant (a broker that forwards them anyway) change nothing on the screen
// or the clipboard; once the user allows control, the same click lands,
// and after a revoke it no longer does.
func TestHostEnforcesConsent(t *testing.T) {
	if _, err := exec.LookPath("xclip"); err != nil {
		t.Fatal("xclip is needed for the clipboard (make deps-test installs it)")
	}
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	w := xtest.StartInputWitness(t, display)

	u := &user{grant: []string{protocol.PermView}}
	mgr, err := consent.New(consent.Config{Prompter: u})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(perms ...string) {
		t.Helper()
		req := protocol.ConsentRequest{ID: "r", Viewer: protocol.Person{ID: "u_1", Name: "Dana", Role: "technician"},
			Permissions: perms, TimeoutSeconds: 10}
		if a := mgr.Handle(context.Background(), req); len(a.Granted) == 0 {
			t.Fatalf("the user's answer was not recorded: %+v", a)
		}
	}
	ask(protocol.PermView, protocol.PermControl, protocol.PermClipboard)

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	control, answers := brokerControl(t)
	r := &remote{log: log, inj: input.New(log, func() (x, y, w, h int) { return 0, 0, 320, 240 }), allow: mgr.Allowed, control: control,
		selectDisplay: func(int) (protocol.ControlMessage, error) {
			t.Error("the display was switched without the user's grant")
			return protocol.ControlMessage{}, nil
		}}
	click := func() {
		for _, down := range []bool{true, false} {
			b, err := protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: down, X: 100, Y: 80}.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			r.onInput(b)
		}
	}
	noInput := func(what string) {
		t.Helper()
		time.Sleep(500 * time.Millisecond)
		for _, l := range w.Lines() {
			if strings.HasPrefix(l, "button") || strings.HasPrefix(l, "key") {
				t.Fatalf("%s reached the screen: %q", what, l)
			}
		}
	}

	if err := clipboard.Write("the user's own text"); err != nil {
		t.Fatal(err)
	}
	click()
	text, err := protocol.InputEvent{Kind: protocol.InputText, Text: "rm -rf ~"}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	r.onInput(text)
	for _, m := range []protocol.ControlMessage{
		{Type: protocol.ControlClipboard, Text: "forged"},
		{Type: protocol.ControlClipboardRequest},
		{Type: protocol.ControlDisplaySelect, Index: 1},
	} {
		b, err := protocol.EncodeControl(m)
		if err != nil {
			t.Fatal(err)
		}
		r.onControl(b)
	}
	noInput("input without the grant")
	if got, err := clipboard.Read(); err != nil || got != "the user's own text" {
		t.Fatalf("clipboard without the grant: %q, %v", got, err)
	}
	// The text and the fetch refused are answered all the same: the broker
	// gives each answer to the technician who asked, in order.
	for _, want := range []struct {
		what string
		protocol.ControlMessage
	}{
		{"text", protocol.ControlMessage{Type: protocol.ControlClipboardSet, Reason: "The user has not allowed clipboard sharing."}},
		{"fetch", protocol.ControlMessage{Type: protocol.ControlClipboard, Fetched: true, Reason: "The user has not allowed clipboard sharing."}},
	} {
		select {
		case m := <-answers:
			if m.Type != want.Type || m.Fetched != want.Fetched || m.Reason != want.Reason || m.Text != "" {
				t.Fatalf("the refused %s was answered %+v", want.what, m)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the refused %s was not answered", want.what)
		}
	}

	u.grant = []string{protocol.PermView, protocol.PermControl}
	ask(protocol.PermControl)
	click()
	w.Wait(t, `^button 1 down 100 80$`, 5*time.Second)
	w.Wait(t, `^button 1 up 100 80$`, 5*time.Second)

	if err := mgr.Revoke(protocol.PermControl); err != nil {
		t.Fatal(err)
	}
	w.Skip()
	mark := len(w.Lines())
	click()
	time.Sleep(500 * time.Millisecond)
	if after := w.Lines()[mark:]; len(after) != 0 {
		t.Fatalf("input after the user revoked control reached the screen: %q", after)
	}
}

// brokerControl connects a control channel for the host to a peer in the
// test, as the broker's, and returns it with what the peer receives on it.
func brokerControl(t *testing.T) (*webrtc.DataChannel, <-chan protocol.ControlMessage) {
	t.Helper()
	var peers [2]*webrtc.PeerConnection
	var controls [2]*webrtc.DataChannel
	opened := make(chan struct{}, 2)
	for i := range peers {
		pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		if controls[i], _, err = rtc.DataChannels(pc); err != nil {
			t.Fatal(err)
		}
		controls[i].OnOpen(func() { opened <- struct{}{} })
		peers[i] = pc
	}
	offer, err := peers[0].CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	offerSDP, err := rtc.GatherComplete(peers[0], offer)
	if err != nil {
		t.Fatal(err)
	}
	if err := peers[1].SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		t.Fatal(err)
	}
	answer, err := peers[1].CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	answerSDP, err := rtc.GatherComplete(peers[1], answer)
	if err != nil {
		t.Fatal(err)
	}
	if err := peers[0].SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answerSDP}); err != nil {
		t.Fatal(err)
	}
	received := make(chan protocol.ControlMessage, 64)
	controls[1].OnMessage(func(m webrtc.DataChannelMessage) {
		if msg, err := protocol.DecodeControl(m.Data); err == nil {
			received <- msg
		}
	})
	for range 2 {
		select {
		case <-opened:
		case <-time.After(10 * time.Second):
			t.Fatal("the control channel did not open")
		}
	}
	return controls[0], received
}

// TestInputTakenBackMidway: a key pressed as the user takes control back
// (allowed when it was checked, no longer once it went in, so the host's
// release may have come before it) is let go at once, not left held down.
func TestInputTakenBackMidway(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	w := xtest.StartInputWitness(t, display)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	looks := 0
	r := &remote{log: log, inj: input.New(log, func() (x, y, w, h int) { return 0, 0, 320, 240 }),
		allow: func(string) bool { looks++; return looks == 1 }}
	b, err := protocol.InputEvent{Kind: protocol.InputKey, Code: "ShiftLeft", Down: true}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	r.onInput(b)
	w.Wait(t, `^key down \d+ Shift_L$`, 5*time.Second)
	w.Wait(t, `^key up \d+ Shift_L$`, 5*time.Second)
}

// TestTypingStopsWhenControlTakenBack: a text under way (emoji are typed
// one by one, through a keyboard remap and a pause each) stops at the next
// character when the user takes control back or pauses: the rest, its
// Enter included, is not typed, and the user's command does not wait for
// it.
func TestTypingStopsWhenControlTakenBack(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	w := xtest.StartInputWitness(t, display)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	inj := input.New(log, func() (x, y, w, h int) { return 0, 0, 320, 240 })
	r := &remote{log: log, inj: inj, allow: func(string) bool { return true }}
	b, err := protocol.InputEvent{Kind: protocol.InputText, Text: strings.Repeat("\U0001F600", 15) + "\n"}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	typed := make(chan struct{})
	go func() {
		defer close(typed)
		r.onInput(b)
	}()
	w.Wait(t, `^key down `, 5*time.Second)
	start := time.Now()
	inj.ReleaseAll() // what revoking control or pausing does
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("taking control back waited %s for the text being typed", d)
	}
	<-typed
	time.Sleep(200 * time.Millisecond)
	downs := 0
	for _, l := range w.Lines() {
		if strings.Contains(l, "Return") {
			t.Errorf("the text's Enter was typed after control was taken back: %q", w.Lines())
		}
		if strings.HasPrefix(l, "key down") {
			downs++
		}
	}
	if downs > 3 {
		t.Errorf("%d of the 15 emoji typed after control was taken back at the first", downs)
	}
	if _, dropped := inj.Stats(); dropped != 1 {
		t.Errorf("the text cut short counted %d dropped, want 1", dropped)
	}
}
