// Package xtest runs the real programs the project's tests need: a private
// Xvfb display (split into several monitors if need be), the test X client
// testdata/xpattern (as a picture, or as a witness of injected input), and
// the project's own binaries built once per test process. It is imported by
// tests only.
package xtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Pattern colours painted by testdata/xpattern -mode pattern, per quadrant.
var (
	TopLeft     = [3]uint8{0xff, 0x00, 0x00}
	TopRight    = [3]uint8{0x00, 0xff, 0x00}
	BottomLeft  = [3]uint8{0x00, 0x00, 0xff}
	BottomRight = [3]uint8{0xff, 0xff, 0xff}
)

// StartXvfb starts a private Xvfb with one w x h screen at 24 bits and
// returns its DISPLAY. It picks a free display number between 90 and 160
// and learns readiness from -displayfd, so a server started at the same
// time by another test process is never mistaken for ours. Cleanup stops it.
func StartXvfb(tb testing.TB, w, h int) string {
	tb.Helper()
	return StartXvfbServer(tb, w, h).Display
}

// ResetWhenIdle, among StartXvfbServer's arguments, starts the server
// without -noreset: it resets whenever its last client leaves, as an X
// server with nothing else on it does.
const ResetWhenIdle = "(reset when idle)"

// XvfbServer is a running private Xvfb.
type XvfbServer struct {
	// Display is the server's DISPLAY, e.g. ":93".
	Display string
	stop    func()
}

// StartXvfbServer is StartXvfb with extra Xvfb arguments (for example
// "-extension", "MIT-SHM" to run without an extension), returning the
// server so a test can stop it early, as when checking what happens when
// the X server goes away. Cleanup stops it if the test has not.
func StartXvfbServer(tb testing.TB, w, h int, args ...string) *XvfbServer {
	tb.Helper()
	if _, err := exec.LookPath("Xvfb"); err != nil {
		tb.Fatal("Xvfb is not installed (Debian package xvfb): run `make test`, which installs it")
	}
	var failures []string
	for n := 90; n <= 160; n++ {
		if exists(fmt.Sprintf("/tmp/.X11-unix/X%d", n)) || exists(fmt.Sprintf("/tmp/.X%d-lock", n)) {
			continue
		}
		s, err := tryXvfb(tb, n, w, h, args)
		if err == nil {
			return s
		}
		failures = append(failures, err.Error())
	}
	tb.Fatalf("no Xvfb could start on displays :90..:160:\n%s", strings.Join(failures, "\n"))
	return nil
}

// Stop stops the server and waits for it to exit. Calling it again does
// nothing.
func (s *XvfbServer) Stop() { s.stop() }

func tryXvfb(tb testing.TB, n, w, h int, extra []string) (*XvfbServer, error) {
	r, wr, err := os.Pipe()
	if err != nil {
		tb.Fatalf("pipe for Xvfb -displayfd: %v", err)
	}
	defer r.Close()
	var stderr bytes.Buffer
	// -noreset: kbinani/screenshot opens one connection per frame and the
	// server would otherwise reset whenever the last client leaves.
	args := []string{fmt.Sprintf(":%d", n), "-displayfd", "3",
		"-screen", "0", fmt.Sprintf("%dx%dx24", w, h), "-nolisten", "tcp"}
	if i := slices.Index(extra, ResetWhenIdle); i >= 0 {
		extra = slices.Delete(slices.Clone(extra), i, i+1)
	} else {
		args = append(args, "-noreset")
	}
	args = append(args, extra...)
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
			var once sync.Once
			srv := &XvfbServer{Display: fmt.Sprintf(":%d", n), stop: func() {
				once.Do(func() {
					cmd.Process.Signal(syscall.SIGTERM)
					cmd.Wait()
				})
			}}
			tb.Cleanup(srv.Stop)
			return srv, nil
		}
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("Xvfb :%d did not start: %s", n, strings.TrimSpace(stderr.String()))
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		<-line
		return nil, fmt.Errorf("Xvfb :%d not ready after 15s: %s", n, strings.TrimSpace(stderr.String()))
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// FreeDisplay returns a display name no X server listens on.
func FreeDisplay(tb testing.TB) string {
	for n := 161; n < 250; n++ {
		if !exists(fmt.Sprintf("/tmp/.X11-unix/X%d", n)) && !exists(fmt.Sprintf("/tmp/.X%d-lock", n)) {
			return fmt.Sprintf(":%d", n)
		}
	}
	tb.Fatal("no unused display number in :161..:249")
	return ""
}

var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]string
}

// Build compiles the package at pkg (relative to the module root, e.g.
// "./host") once per test process and returns the binary's path.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if p, ok := builds.bins[pkg]; ok {
		return p
	}
	root, err := moduleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	if builds.dir == "" {
		if builds.dir, err = os.MkdirTemp("", "tether-bin"); err != nil {
			tb.Fatal(err)
		}
		builds.bins = map[string]string{}
	}
	out := filepath.Join(builds.dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
	builds.bins[pkg] = out
	return out
}

// Cleanup removes the binaries Build made; call it from TestMain.
func Cleanup() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if exists(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// StartPattern runs testdata/xpattern on display with args and returns once
// it has printed "ready". Cleanup stops it with SIGTERM and checks that it
// exited cleanly.
func StartPattern(tb testing.TB, display string, args ...string) {
	tb.Helper()
	bin := Build(tb, "./testdata/xpattern")
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

// StartXwayland runs a headless Wayland compositor (weston) with Xwayland,
// as an Ubuntu or Fedora desktop session has by default, and returns the
// DISPLAY of its Xwayland server. Cleanup stops it.
func StartXwayland(tb testing.TB) string {
	tb.Helper()
	if _, err := exec.LookPath("weston"); err != nil {
		tb.Fatal("weston is not installed (Debian packages weston and xwayland): run `make test`, which installs them")
	}
	runtime := tb.TempDir() // weston wants XDG_RUNTIME_DIR private to its user
	if err := os.Chmod(runtime, 0o700); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("weston", "--backend=headless-backend.so", "--xwayland", "--socket=tether-test", "--shell=kiosk-shell.so",
		"--width=1280", "--height=720", "--idle-time=0")
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtime)
	out, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start weston: %v", err)
	}
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	// Weston names the X display it listens on; Xwayland itself starts
	// when the first X client connects. The scanner reads weston's output
	// to the end, so weston never blocks on a full pipe.
	display := make(chan string, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if _, d, ok := strings.Cut(sc.Text(), "xserver listening on display "); ok {
				display <- strings.TrimSpace(d)
			}
		}
		close(display)
	}()
	select {
	case d, ok := <-display:
		if !ok {
			tb.Fatalf("weston exited without starting Xwayland:\n%s", log.String())
		}
		return d
	case <-time.After(20 * time.Second):
		tb.Fatal("weston did not start Xwayland within 20 s")
	}
	return ""
}
