package consent

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-support/tether/internal/protocol"
)

func TestParseAnswer(t *testing.T) {
	asked := []string{protocol.PermView, protocol.PermControl, protocol.PermClipboard}
	for _, tt := range []struct {
		line string
		want []string
		ok   bool
	}{
		{"all", asked, true},
		{"Yes", asked, true},
		{"y", asked, true},
		{"1 3", []string{"view", "clipboard"}, true},
		{"control, view", []string{"control", "view"}, true},
		{"no", nil, true},
		{" N ", nil, true},
		{"", nil, false},
		{"yse", nil, false},
		{"1 9", nil, false},
		{"1 shell", nil, false},
	} {
		got, ok := parseAnswer(tt.line, asked)
		if ok != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("%q: %q %v, want %q %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

// lockedBuffer is the terminal's output, read while it is written.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) waitFor(t *testing.T, s string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l.mu.Lock()
		out := l.b.String()
		l.mu.Unlock()
		if strings.Count(out, s) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q (%d) in %q", s, n, out)
		}
	}
}

// TestTerminalAsksAgain: an empty line or a typo is not an answer: the
// question stays open until the user answers it.
func TestTerminalAsksAgain(t *testing.T) {
	in, typed := io.Pipe()
	defer typed.Close()
	var out lockedBuffer
	term := NewTerminal(in, &out)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go term.Serve(ctx, nil) // only answers are typed: no commands reach the manager

	answer := make(chan []string, 1)
	go func() {
		granted, _ := term.Ask(ctx, protocol.ConsentRequest{Viewer: protocol.Person{Name: "lee", Role: "technician"},
			Permissions: []string{protocol.PermView, protocol.PermControl}, TimeoutSeconds: 60})
		answer <- granted
	}()
	out.waitFor(t, "Allow? ", 1)
	io.WriteString(typed, "\n")
	out.waitFor(t, "Allow? ", 2)
	io.WriteString(typed, "yse\n")
	out.waitFor(t, "Allow? ", 3)
	select {
	case got := <-answer:
		t.Fatalf("answered %q before the user did", got)
	default:
	}
	io.WriteString(typed, "yes\n")
	if got := <-answer; !slices.Equal(got, []string{protocol.PermView, protocol.PermControl}) {
		t.Fatalf("granted %q", got)
	}
	out.waitFor(t, "Allowed: view, control.", 1)
}
