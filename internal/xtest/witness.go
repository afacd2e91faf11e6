package xtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Colours of the input witness (testdata/xpattern -mode input): the
// window starts WitnessStart and every press of mouse button 1, 2 or 3
// toggles it to the other one.
var (
	WitnessStart   = [3]uint8{0x00, 0x00, 0x00}
	WitnessToggled = [3]uint8{0xff, 0xff, 0xff}
)

// Witness is a running testdata/xpattern -mode input: a window covering the
// screen, holding the keyboard focus, that prints the input events it
// receives. See testdata/xpattern/input.go for the lines it prints, e.g.
// "button 1 down 640 360", "key down 38 a", "text A", "wheel up",
// "colour #ffffff".
type Witness struct {
	mu      sync.Mutex
	lines   []string
	next    int           // index of the first line Wait has not consumed
	changed chan struct{} // closed and replaced when a line arrives or output ends
	ended   bool          // stdout reached EOF
}

// StartInputWitness runs the input witness on display (extra args go to
// xpattern, e.g. "-log", path) and returns once it is ready: from then on
// every key, button and motion event the X server delivers is recorded.
// Cleanup stops it and checks that it exited cleanly.
func StartInputWitness(tb testing.TB, display string, args ...string) *Witness {
	tb.Helper()
	bin := Build(tb, "./testdata/xpattern")
	args = append([]string{"-mode", "input"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start xpattern: %v", err)
	}
	w := &Witness{changed: make(chan struct{})}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		w.read(stdout)
	}()
	stop := func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		// The reader sees EOF once xpattern has exited; Wait must come
		// after it, as it closes the pipe.
		select {
		case <-readDone:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-readDone
		}
		return cmd.Wait()
	}
	if _, err := w.wait("^ready$", 15*time.Second); err != nil {
		stop()
		tb.Fatalf("xpattern %v on %s: %v; stderr: %s", args, display, err, stderr.String())
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("xpattern %v exited with %v; stderr: %s", args, err, stderr.String())
		}
	})
	return w
}

func (w *Witness) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		w.mu.Lock()
		w.lines = append(w.lines, sc.Text())
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.ended = true
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// Wait waits up to timeout for a line matching the regular expression
// pattern and returns it. It looks only at lines after the one the previous
// Wait returned, so successive Waits assert an order; lines in between are
// skipped. It fails the test on timeout, listing the lines seen.
func (w *Witness) Wait(tb testing.TB, pattern string, timeout time.Duration) string {
	tb.Helper()
	line, err := w.wait(pattern, timeout)
	if err != nil {
		tb.Fatalf("input witness: %v; lines so far:\n%s", err, strings.Join(w.Lines(), "\n"))
	}
	return line
}

func (w *Witness) wait(pattern string, timeout time.Duration) (string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", fmt.Errorf("pattern %q: %w", pattern, err)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		for ; w.next < len(w.lines); w.next++ {
			if l := w.lines[w.next]; re.MatchString(l) {
				w.next++
				w.mu.Unlock()
				return l, nil
			}
		}
		ended, changed := w.ended, w.changed
		w.mu.Unlock()
		if ended {
			return "", fmt.Errorf("no line matching %q: xpattern's output ended", pattern)
		}
		select {
		case <-changed:
		case <-deadline.C:
			return "", fmt.Errorf("no line matching %q after %v", pattern, timeout)
		}
	}
}

// Skip makes the next Wait look only at lines printed after this call.
func (w *Witness) Skip() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next = len(w.lines)
}

// Lines returns every line printed after "ready" so far.
func (w *Witness) Lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.lines) > 0 && w.lines[0] == "ready" {
		return append([]string(nil), w.lines[1:]...)
	}
	return append([]string(nil), w.lines...)
}
