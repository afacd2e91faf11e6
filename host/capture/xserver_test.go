//go:build linux

package capture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jezek/xgb"
)

// Helpers that run real X11 programs for the tests: Xvfb, and the
// project's own test client testdata/xpattern.

var xpatternBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	// xgb logs a line per connection when ~/.Xauthority is missing, which
	// is always the case against Xvfb without -auth.
	xgb.Logger = log.New(io.Discard, "", 0)
	before := runtime.NumGoroutine()
	code := m.Run()
	if xpatternBin.dir != "" {
		os.RemoveAll(xpatternBin.dir)
	}
	if code == 0 {
		if err := checkGoroutines(before); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkGoroutines fails when goroutines started by the tests (ours or the
// xgb connections under them) are still running. Closed connections take a
// moment to wind down, hence the wait.
func checkGoroutines(before int) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			return fmt.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startXvfb starts a private Xvfb with one screen of w x h at 24 bits (and
// extra arguments, if any) and returns its DISPLAY. It picks a free display number between 90 and 120
// and learns readiness from -displayfd, so a server started at the same
// time by another test process is never mistaken for ours.
func startXvfb(tb testing.TB, w, h int, extra ...string) string {
	tb.Helper()
	if _, err := exec.LookPath("Xvfb"); err != nil {
		tb.Skip("Xvfb is not installed (Debian package xvfb); the capture tests need a real X server")
	}
	var failures []string
	for n := 90; n <= 120; n++ {
		if exists(fmt.Sprintf("/tmp/.X11-unix/X%d", n)) || exists(fmt.Sprintf("/tmp/.X%d-lock", n)) {
			continue
		}
		display, err := tryXvfb(tb, n, w, h, extra)
		if err == nil {
			return display
		}
		failures = append(failures, err.Error())
	}
	tb.Fatalf("no Xvfb could start on displays :90..:120:\n%s", strings.Join(failures, "\n"))
	return ""
}

func tryXvfb(tb testing.TB, n, w, h int, extra []string) (string, error) {
	r, wr, err := os.Pipe()
	if err != nil {
		tb.Fatalf("pipe for Xvfb -displayfd: %v", err)
	}
	defer r.Close()
	var stderr bytes.Buffer
	args := append([]string{fmt.Sprintf(":%d", n), "-displayfd", "3",
		"-screen", "0", fmt.Sprintf("%dx%dx24", w, h), "-noreset", "-nolisten", "tcp"}, extra...)
	cmd := exec.Command("Xvfb", args...)
	cmd.ExtraFiles = []*os.File{wr}
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		wr.Close()
		tb.Fatalf("start Xvfb: %v", err)
	}
	wr.Close()

	// Xvfb writes the display number once it accepts connections; EOF
	// means it exited (display taken).
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if strings.TrimSpace(s) == fmt.Sprint(n) {
			display := fmt.Sprintf(":%d", n)
			var once sync.Once
			stop := func() {
				once.Do(func() {
					cmd.Process.Signal(syscall.SIGTERM)
					cmd.Wait()
				})
			}
			servers.Store(display, stop)
			tb.Cleanup(func() {
				stop()
				servers.Delete(display)
			})
			return display, nil
		}
		cmd.Process.Kill()
		cmd.Wait()
		return "", fmt.Errorf("Xvfb :%d did not start: %s", n, strings.TrimSpace(stderr.String()))
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		<-line // the pipe is closed now that Xvfb is gone
		return "", fmt.Errorf("Xvfb :%d not ready after 15s: %s", n, strings.TrimSpace(stderr.String()))
	}
}

// servers maps the DISPLAY of each running Xvfb to the function that stops it.
var servers sync.Map

// stopXvfb stops the Xvfb serving display and waits for it to exit.
func stopXvfb(tb testing.TB, display string) {
	stop, ok := servers.Load(display)
	if !ok {
		tb.Fatalf("no Xvfb of ours on %s", display)
	}
	stop.(func())()
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// freeDisplay returns a display name no X server listens on.
func freeDisplay(tb testing.TB) string {
	for n := 121; n < 200; n++ {
		if !exists(fmt.Sprintf("/tmp/.X11-unix/X%d", n)) && !exists(fmt.Sprintf("/tmp/.X%d-lock", n)) {
			return fmt.Sprintf(":%d", n)
		}
	}
	tb.Fatal("no unused display number in :121..:199")
	return ""
}

// startPattern runs testdata/xpattern on display with args and returns once
// it has printed "ready". Cleanup stops it with SIGTERM and checks that it
// exited cleanly.
func startPattern(tb testing.TB, display string, args ...string) {
	tb.Helper()
	xpatternBin.once.Do(func() {
		xpatternBin.dir, xpatternBin.err = os.MkdirTemp("", "xpattern")
		if xpatternBin.err != nil {
			return
		}
		xpatternBin.path = filepath.Join(xpatternBin.dir, "xpattern")
		out, err := exec.Command("go", "build", "-o", xpatternBin.path, "../../testdata/xpattern").CombinedOutput()
		if err != nil {
			xpatternBin.err = fmt.Errorf("go build testdata/xpattern: %v\n%s", err, out)
		}
	})
	if xpatternBin.err != nil {
		tb.Fatal(xpatternBin.err)
	}
	cmd := exec.Command(xpatternBin.path, args...)
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
	ready := make(chan error, 1)
	go func() {
		s, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && s != "ready\n" {
			err = fmt.Errorf("first line %q, want \"ready\"", s)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(15 * time.Second):
		err = errors.New("no \"ready\" after 15s")
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		<-ready
		tb.Fatalf("xpattern %v on %s: %v; stderr: %s", args, display, err, stderr.String())
	}
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			tb.Errorf("xpattern %v exited with %v; stderr: %s", args, err, stderr.String())
		}
	})
}
