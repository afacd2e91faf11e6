package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/tether-support/tether/internal/xtest"
)

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// hostProc is a running bin/host with its stdin and stdout on a terminal
// (a pty), as a user who started it from a shell would have: that is where
// it asks for consent.
type hostProc struct {
	cmd    *exec.Cmd
	pty    *os.File
	stdout syncBuffer // what the user reads on the terminal
	stderr syncBuffer // the log and the error line
	done   chan error
	read   chan struct{} // closed when the terminal has nothing more to read

	mu    sync.Mutex
	auto  bool // answer "all" to every prompt
	asked int  // prompts answered so far
}

// startHost runs the host and allows everything asked of it, answering
// each real prompt on the terminal as the user would.
func startHost(t *testing.T, display string, args ...string) *hostProc {
	return runHost(t, display, true, args...)
}

// startHostAsking runs the host; the test answers with answer().
func startHostAsking(t *testing.T, display string, args ...string) *hostProc {
	return runHost(t, display, false, args...)
}

func runHost(t *testing.T, display string, auto bool, args ...string) *hostProc {
	t.Helper()
	return runHostBinary(t, xtest.Build(t, "./host"), display, auto, args...)
}

// runHostEnv runs the host with extra environment variables (HOME, SHELL).
func runHostEnv(t *testing.T, display string, auto bool, env []string, args ...string) *hostProc {
	t.Helper()
	return startHostProc(t, xtest.Build(t, "./host"), display, auto, env, args...)
}

// runHostBinary runs the host program at bin (e.g. one downloaded from a
// join page) on a terminal.
func runHostBinary(t *testing.T, bin, display string, auto bool, args ...string) *hostProc {
	t.Helper()
	return startHostProc(t, bin, display, auto, nil, args...)
}

func startHostProc(t *testing.T, bin, display string, auto bool, env []string, args ...string) *hostProc {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	h := &hostProc{cmd: exec.Command(bin, args...), pty: ptmx, done: make(chan error, 1), read: make(chan struct{}), auto: auto}
	// A home of its own: the shells it opens read none of the dotfiles of
	// whoever runs the tests (an rc file that waits on a lock left by a
	// shell killed in an earlier test would hang every later one).
	h.cmd.Env = append(append(os.Environ(), "DISPLAY="+display, "HOME="+t.TempDir()), env...)
	h.cmd.Stdin, h.cmd.Stdout, h.cmd.Stderr = tty, tty, &h.stderr
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	go h.readTerminal()
	go func() { h.done <- h.cmd.Wait() }()
	t.Cleanup(func() {
		h.cmd.Process.Kill()
		<-h.done
		ptmx.Close()
	})
	return h
}

// readTerminal collects the terminal output and answers prompts when the
// host runs in auto mode.
func (h *hostProc) readTerminal() {
	defer close(h.read)
	buf := make([]byte, 4096)
	for {
		n, err := h.pty.Read(buf)
		if n > 0 {
			h.stdout.Write(buf[:n])
			h.mu.Lock()
			prompts := strings.Count(h.stdout.String(), "Allow? ")
			for h.auto && h.asked < prompts {
				h.asked++
				h.pty.WriteString("all\n")
			}
			h.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// waitOutput waits until the terminal shows want (counting from the
// count-th occurrence, 1-based) and returns everything shown.
func (h *hostProc) waitOutput(t *testing.T, want string, count int, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := h.stdout.String()
		if strings.Count(out, want) >= count {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("host terminal never showed %q (x%d); it shows:\n%s\nstderr:\n%s", want, count, out, h.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// typeLine sends a line to the host's terminal, as the user typing it.
func (h *hostProc) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := h.pty.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
}

// wait returns the host's exit code once it exits and its last words on
// the terminal have been read.
func (h *hostProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case err := <-h.done:
		h.done <- err // let Cleanup read it again
		// The terminal closes once the host is gone: what it printed last
		// is read by then.
		select {
		case <-h.read:
		case <-time.After(5 * time.Second):
		}
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatalf("host: %v", err)
	case <-time.After(timeout):
		t.Fatalf("host still running after %s; stderr:\n%s", timeout, h.stderr.String())
	}
	return -1
}

// startCmd starts cmd with its output, stdout and stderr together, in the
// buffer it returns; the test's end kills it if it still runs.
func startCmd(t *testing.T, cmd *exec.Cmd) *syncBuffer {
	t.Helper()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return &out
}
