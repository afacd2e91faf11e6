package session

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/tether-support/tether/host/clipboard"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
)

// TestHostLimitsClipboard: the user's computer limits the technicians'
// clipboard messages itself, whatever the broker lets through. Of a flood
// of texts, clipBurst are set and the rest are refused, each answered in
// order with its id (the broker gives each answer to the technician who
// asked, and the technician's console matches it by the id), and
// none of the refused reaches the clipboard; a fetch in the same moment is
// refused too, and one a moment later is served again.
func TestHostLimitsClipboard(t *testing.T) {
	if _, err := exec.LookPath("xclip"); err != nil {
		t.Fatal("xclip is needed for the clipboard (make deps-test installs it)")
	}
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	control, answers := brokerControl(t)
	clock := time.Unix(1_700_000_000, 0)
	r := &remote{log: log, control: control, allow: func(string) bool { return true }, now: func() time.Time { return clock }}
	send := func(m protocol.ControlMessage) {
		t.Helper()
		b, err := protocol.EncodeControl(m)
		if err != nil {
			t.Fatal(err)
		}
		r.onControl(b)
	}
	answer := func() protocol.ControlMessage {
		t.Helper()
		select {
		case m := <-answers:
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("a clipboard message was not answered")
			return protocol.ControlMessage{}
		}
	}
	const tooMany = "The user's computer received too many clipboard messages at once: wait a moment, then try again."

	const flood = clipBurst + 10
	for i := range flood {
		send(protocol.ControlMessage{Type: protocol.ControlClipboard, Text: fmt.Sprintf("text %d", i), ID: 100 + i})
	}
	send(protocol.ControlMessage{Type: protocol.ControlClipboardRequest})
	for i := range flood {
		m := answer()
		want := ""
		if i >= clipBurst {
			want = tooMany
		}
		if m.Type != protocol.ControlClipboardSet || m.Reason != want || m.ID != 100+i {
			t.Fatalf("text %d was answered %+v, want reason %q and id %d", i, m, want, 100+i)
		}
	}
	if m := answer(); m.Type != protocol.ControlClipboard || !m.Fetched || m.Reason != tooMany || m.Text != "" {
		t.Fatalf("a fetch past the limit was answered %+v", m)
	}
	if got, err := clipboard.Read(); err != nil || got != fmt.Sprintf("text %d", clipBurst-1) {
		t.Fatalf("the clipboard holds %q (%v), want the last text let through", got, err)
	}

	clock = clock.Add(time.Second / time.Duration(clipRate))
	send(protocol.ControlMessage{Type: protocol.ControlClipboardRequest})
	if m := answer(); m.Type != protocol.ControlClipboard || !m.Fetched || m.Reason != "" || m.Text != fmt.Sprintf("text %d", clipBurst-1) {
		t.Fatalf("a fetch a moment later was answered %+v", m)
	}
}
