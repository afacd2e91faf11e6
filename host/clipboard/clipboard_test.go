//go:build linux

package clipboard

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
)

// copyText puts text on the clipboard as a program the user copies in
// does: xclip takes the clipboard and serves it.
func copyText(t *testing.T, display, text string) {
	t.Helper()
	cmd := exec.Command("xclip", "-selection", "clipboard", "-i")
	cmd.Env = append(cmd.Environ(), "DISPLAY="+display)
	cmd.Stdin = strings.NewReader(text)
	// No output taken: xclip stays behind to serve the clipboard, holding
	// whatever pipes it was given.
	if err := cmd.Run(); err != nil {
		t.Fatalf("xclip: %v", err)
	}
}

// watch runs Watch with interval and returns the texts it reports.
func watch(t *testing.T, interval time.Duration) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan string, 10)
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, interval, func(s string) { changes <- s }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	time.Sleep(500 * time.Millisecond) // started, and listening
	return changes
}

func wantChange(t *testing.T, changes <-chan string, want string, within time.Duration) {
	t.Helper()
	select {
	case got := <-changes:
		if got != want {
			t.Fatalf("Watch reported %q, want %q", got, want)
		}
	case <-time.After(within):
		t.Fatalf("Watch did not report the copy of %q within %v", want, within)
	}
}

// TestWatchSeesCopies: with the X server telling of copies, each copy is
// reported at once though the clipboard is not polled (an hour apart).
func TestWatchSeesCopies(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	changes := watch(t, time.Hour)
	for _, text := range []string{"first copy", "second copy"} {
		start := time.Now()
		copyText(t, display, text)
		wantChange(t, changes, text, 2*time.Second)
		t.Logf("%q reported %v after the copy", text, time.Since(start).Round(time.Millisecond))
	}
}

// TestWatchPollsWithoutXFixes: an X server that cannot tell of copies is
// polled at the interval given.
func TestWatchPollsWithoutXFixes(t *testing.T) {
	display := xtest.StartXvfbServer(t, 320, 240, "-extension", "XFIXES").Display
	t.Setenv("DISPLAY", display)
	if _, err := copies(context.Background()); err == nil {
		t.Fatal("copies works without XFixes")
	}
	changes := watch(t, 100*time.Millisecond)
	copyText(t, display, "polled copy")
	wantChange(t, changes, "polled copy", 5*time.Second) // a read may wait out readTimeout once, on a busy machine
}

// TestReadLargeCopyBounded: a user who copies far more text than can be
// shared (a whole log file) costs the host no more than the limit: the
// read stops just past it, enough to tell that it is too large, instead
// of taking it all in at each copy and each recheck.
func TestReadLargeCopyBounded(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	copyText(t, display, strings.Repeat("a line of a long log file\n", 8<<20/26))
	text, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(text) <= protocol.MaxClipboard || len(text) > protocol.MaxClipboard+1 {
		t.Fatalf("read %d bytes of an 8 MiB clipboard, want %d: just past the limit of %d", len(text), protocol.MaxClipboard+1, protocol.MaxClipboard)
	}
	// A copy within the limit is read whole, as ever.
	copyText(t, display, "short")
	if text, err := Read(); err != nil || text != "short" {
		t.Fatalf("Read() = %q, %v after a short copy", text, err)
	}
}
