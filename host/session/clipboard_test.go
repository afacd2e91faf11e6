package session

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
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

// TestHostFetchAnswersEveryText: whatever the user's clipboard holds, a
// technician's fetch is answered, with the text or with why not: markup
// as it is, Latin-1 (what a program offering only STRING gives) as the
// letters it means, text too full of control characters to fit a message
// with a reason. Unanswered, the fetch would wait for ever and take the
// answer to the next one.
func TestHostFetchAnswersEveryText(t *testing.T) {
	if _, err := exec.LookPath("xclip"); err != nil {
		t.Fatal("xclip is needed for the clipboard (make deps-test installs it)")
	}
	t.Setenv("DISPLAY", xtest.StartXvfb(t, 320, 240))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	control, answers := brokerControl(t)
	clock := time.Unix(1_700_000_000, 0)
	r := &remote{log: log, control: control, allow: func(string) bool { return true }, now: func() time.Time { return clock }}
	fetch := func(holds string) protocol.ControlMessage {
		t.Helper()
		if err := clipboard.Write(holds); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Second) // within the clipboard rate
		b, _ := protocol.EncodeControl(protocol.ControlMessage{Type: protocol.ControlClipboardRequest})
		r.onControl(b)
		select {
		case m := <-answers:
			if m.Type != protocol.ControlClipboard || !m.Fetched {
				t.Fatalf("a fetch was answered %+v", m)
			}
			return m
		case <-time.After(5 * time.Second):
			t.Fatalf("a fetch of %d bytes was not answered", len(holds))
			return protocol.ControlMessage{}
		}
	}
	table := strings.Repeat("<tr><td>1</td><td>2</td></tr>\n", 60_000/30)
	if m := fetch(table); m.Text != table || m.Reason != "" {
		t.Errorf("60 KB of HTML: %d bytes of text, reason %q", len(m.Text), m.Reason)
	}
	if m := fetch("caf\xe9 cr\xe8me"); m.Text != "café crème" {
		t.Errorf("Latin-1 text: %q, reason %q", m.Text, m.Reason)
	}
	if m := fetch(strings.Repeat("\x01", 60_000)); m.Text != "" || !strings.Contains(m.Reason, "too many control characters") {
		t.Errorf("60 KB of control characters: %d bytes of text, reason %q", len(m.Text), m.Reason)
	}
}
