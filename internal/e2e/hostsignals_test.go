package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
)

// sharingHost starts a session that asks to view, a host on display that
// allows it, and a technician watching; it returns the host.
func sharingHost(t *testing.T, ctx context.Context, b *broker, display string, env ...string) *hostProc {
	t.Helper()
	c := b.client(t)
	sess, err := c.CreateSession(ctx, "INC-HOST", protocol.PermView)
	if err != nil {
		t.Fatal(err)
	}
	host := runHostEnv(t, display, true, env, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, protocol.PermView) }); err != nil {
		t.Fatalf("%v\nhost:\n%s", err, host.stderr.String())
	}
	return host
}

// TestHostSuspendAndQuitKeys: Ctrl+Z (SIGTSTP) does not stop the host,
// whose technician's commands would run on while the user's own no longer
// reach it: it says how to pause or end, and goes on. Ctrl+\ (SIGQUIT)
// ends the session as Ctrl+C does, not with a crash dump. The terminal's
// title says whether the computer is shared.
func TestHostSuspendAndQuitKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	display := xtest.StartXvfb(t, 320, 240)
	b := startBroker(t)
	host := sharingHost(t, ctx, b, display)
	host.waitOutput(t, "\x1b]0;Tether: SHARING this computer\x07", 1, 10*time.Second)

	host.cmd.Process.Signal(syscall.SIGTSTP)
	host.waitOutput(t, `Ctrl+Z does not pause sharing: type "pause" or "end", or press Ctrl+C.`, 1, 5*time.Second)
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", host.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) == 0 || f[0] == "T" {
		t.Fatalf("the host was stopped by Ctrl+Z: %s", stat)
	}
	host.typeLine(t, "pause") // the user's commands still reach it
	host.waitOutput(t, "PAUSED: nothing is shared until you resume. Then ", 1, 5*time.Second)
	host.waitOutput(t, "\x1b]0;Tether: paused, nothing shared\x07", 1, 5*time.Second)

	host.cmd.Process.Signal(syscall.SIGQUIT)
	if code := host.wait(t, 20*time.Second); code != 0 {
		t.Errorf("Ctrl+\\ ended the host with code %d", code)
	}
	out := host.stdout.String() + host.stderr.String()
	if !strings.Contains(out, "Session ended:") || !strings.Contains(out, "Nothing on this computer is shared any more.") || strings.Contains(out, "goroutine ") {
		t.Errorf("after Ctrl+\\ the user reads:\n%s", out)
	}
}

// TestTwoHostsOneScreen: a second host sharing the same screen (a second
// code, a download run twice) says so, and the one ended first does not
// tell the user that nothing is shared while the other goes on.
func TestTwoHostsOneScreen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	display := xtest.StartXvfb(t, 320, 240)
	b := startBroker(t)
	runtime := "XDG_RUNTIME_DIR=" + t.TempDir()
	first := sharingHost(t, ctx, b, display, runtime)
	second := sharingHost(t, ctx, b, display, runtime)
	second.waitOutput(t, "Another Tether session is already sharing this screen: ending this one does not end it.", 1, 5*time.Second)
	if strings.Contains(first.stdout.String(), "Another Tether session") {
		t.Errorf("the first host says another shares the screen:\n%s", first.stdout.String())
	}

	second.typeLine(t, "end")
	second.wait(t, 20*time.Second)
	if out := second.stdout.String(); !strings.Contains(out, "This session shares nothing any more; another Tether session still shares this screen.") ||
		strings.Contains(out, "Nothing on this computer is shared any more.") {
		t.Errorf("the host ended while another shares the screen says:\n%s", out)
	}
	first.typeLine(t, "end")
	first.wait(t, 20*time.Second)
	if out := first.stdout.String(); !strings.Contains(out, "Nothing on this computer is shared any more.") {
		t.Errorf("the last host ended says:\n%s", out)
	}
}
