package e2e

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/tether-support/tether/internal/xtest"
)

// exitCode is a finished command's exit status (-1 if it did not exit).
func exitCode(err error) int {
	var e *exec.ExitError
	if errors.As(err, &e) {
		return e.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestViewerCLIUsage: a command missing an argument, or given one it
// does not take, prints its usage and exits with 2, before the broker is
// asked anything: `screenshot -session ID out.png` must not save
// screen.png while the technician looks for out.png.
func TestViewerCLIUsage(t *testing.T) {
	b := startBroker(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"join"},
		{"end"},
		{"shell"},
		{"screenshot", "-session", "s_x", filepath.Join(dir, "out.png")},
		{"end", "-session", "s_x", "extra"},
		{"join", "-session", "s_x", "extra"},
		{"push", "-session", "s_x"},
		{"push", "-session", "s_x", "a", "b", "c"},
		{"pull", "-session", "s_x"},
		{"pull", "-session", "s_x", "a", "b", "c"},
		{"ls", "-session", "s_x", "a", "b"},
		{"create", "INC-1"},
		{"login", "admin"},
	} {
		cmd := b.viewer(t, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if code := exitCode(err); code != 2 || !strings.Contains(string(out), "Usage: viewer [global flags] "+args[0]) {
			t.Errorf("viewer %q: exit code %d, want 2 with its usage\n%s", args, code, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "screen.png")); err == nil {
		t.Errorf("a screenshot given a stray argument was saved as screen.png")
	}
}

// TestViewerCLIInterruptLogin: Ctrl+C at the login prompts, or a hang-up,
// ends the command at once, and the terminal echoes again afterwards.
func TestViewerCLIInterruptLogin(t *testing.T) {
	b := startBroker(t)
	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "TETHER_API_KEY=")

	// Input from a pipe that stays open: Ctrl+C at "Username: ".
	cmd := b.viewer(t, "login")
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out := startCmd(t, cmd)
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(out.String(), "Username: ") })
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if exitCode(err) == 0 || !strings.Contains(out.String(), "viewer: stopped") {
			t.Errorf("login stopped at the username: %v\n%s", err, out.String())
		}
	case <-time.After(5 * time.Second):
		t.Errorf("login does not stop on Ctrl+C at the username prompt:\n%s", out.String())
		cmd.Process.Kill()
		<-done
	}

	// On a terminal: Ctrl+C at "Password: ", where echo is off, or the
	// terminal hanging up.
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGHUP} {
		cmd := b.viewer(t, "login")
		cmd.Env = env
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		defer tty.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		var screen syncBuffer
		go io.Copy(&screen, ptmx)
		ptmx.Write([]byte("admin\n"))
		echoOff := func() bool {
			tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
			return err == nil && tio.Lflag&unix.ECHO == 0
		}
		waitFor(t, 10*time.Second, func() bool { return strings.Contains(screen.String(), "Password: ") && echoOff() })
		cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if exitCode(err) == 0 {
				t.Errorf("login stopped by %v at the password: %v\n%s", sig, err, screen.String())
			}
		case <-time.After(5 * time.Second):
			t.Errorf("login does not stop on %v at the password prompt:\n%s", sig, screen.String())
			cmd.Process.Kill()
			<-done
		}
		if echoOff() {
			t.Errorf("the terminal no longer echoes after %v at the password prompt", sig)
		}
		for deadline := time.Now().Add(2 * time.Second); !strings.Contains(screen.String(), "viewer: stopped"); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("login stopped by %v at the password says:\n%q", sig, screen.String())
				break
			}
		}
	}
}

// TestViewerCLIFiles: push, pull and ls as a technician runs them with
// their output going to a file, and with what cannot work refused before
// the user is asked.
func TestViewerCLIFiles(t *testing.T) {
	// Mostly waiting for the broker and the user's computer to answer: it
	// runs beside the other tests that wait.
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	fs.join(t, ctx, "files")
	local := t.TempDir()

	// A file this process cannot read is refused before the user is
	// asked, as a missing one is. (/proc/self/mem is a regular file
	// whose first byte cannot be read, even by root.)
	out, err := fs.b.viewer(t, "push", "-session", fs.id, "/proc/self/mem").CombinedOutput()
	if err == nil || strings.Contains(string(out), "Waiting for the user") || !strings.Contains(string(out), "cannot be read") {
		t.Errorf("push of an unreadable file: %v\n%s", err, out)
	}
	// So is a pull into a folder nothing can be written to.
	os.WriteFile(filepath.Join(fs.home, "app.log"), []byte("log line\n"), 0o644)
	out, err = fs.b.viewer(t, "pull", "-session", fs.id, "app.log", "/proc/").CombinedOutput()
	if err == nil || strings.Contains(string(out), "Waiting for the user") || !strings.Contains(string(out), "cannot write in /proc") {
		t.Errorf("pull into a folder that cannot be written: %v\n%s", err, out)
	}

	// Progress written to a file is lines, not a bar redrawn with CRs.
	src, _ := randomFile(t, local, "tool.bin", 8<<20)
	out, err = fs.b.viewer(t, "push", "-session", fs.id, src).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Sent "+src) {
		t.Fatalf("push: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "\r") || !strings.Contains(string(out), "100%") {
		t.Errorf("push progress, not on a terminal:\n%q", out)
	}
	into := filepath.Join(local, "got.bin")
	randomFile(t, fs.home, "big.bin", 8<<20)
	out, err = fs.b.viewer(t, "pull", "-session", fs.id, "big.bin", into).CombinedOutput()
	if err != nil || strings.Contains(string(out), "\r") || !strings.Contains(string(out), "100%") {
		t.Errorf("pull progress, not on a terminal: %v\n%q", err, out)
	}
	// Pulled again into the file it made: refused, the file kept.
	before, _ := os.ReadFile(into)
	out, err = fs.b.viewer(t, "pull", "-session", fs.id, "app.log", into).CombinedOutput()
	if after, _ := os.ReadFile(into); err == nil || !strings.Contains(string(out), "exists") || string(after) != string(before) {
		t.Errorf("pull onto an existing file: %v\n%s", err, out)
	}

	// Odd names: each on one line of its own, control characters shown
	// as such, and a folder whose name starts with a dash listed after --.
	odd := filepath.Join(fs.home, "-odd dir")
	os.Mkdir(odd, 0o755)
	for _, n := range []string{"with space.txt", "new\nline.txt", "esc\x1b[2Jape.txt", "-rf", "ünïcode.txt"} {
		os.WriteFile(filepath.Join(odd, n), []byte("x"), 0o644)
	}
	out, err = fs.b.viewer(t, "ls", "-session", fs.id, "--", "-odd dir").CombinedOutput()
	if err != nil {
		t.Fatalf("ls of a folder named with a dash: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "\x1b") || strings.Count(strings.TrimSpace(string(out)), "\n") > 5 {
		t.Errorf("ls of odd names:\n%q", out)
	}
	for _, n := range []string{"with space.txt", "ünïcode.txt", "  -rf\n"} {
		if !strings.Contains(string(out), n) {
			t.Errorf("ls does not show %q:\n%s", n, out)
		}
	}
}

// TestViewerNoCredentialsOverRedirect: an https broker, or the proxy in
// front of it, answering with a redirect to http:// (a proxy that builds
// its Location from the scheme it sees) or to another server gets neither
// the API key nor a password sent there; the command says where it was
// sent and stops.
func TestViewerNoCredentialsOverRedirect(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" Authorization="+r.Header.Get("Authorization")+" body="+string(body))
		mu.Unlock()
		http.Error(w, "nope", http.StatusBadGateway)
	}))
	defer plain.Close()
	other := httptest.NewTLSServer(plain.Config.Handler)
	defer other.Close()
	to := plain.URL
	broker := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		target := to
		mu.Unlock()
		http.Redirect(w, r, target+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer broker.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	var pems []byte
	for _, srv := range []*httptest.Server{broker, other} {
		pems = append(pems, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})...)
	}
	if err := os.WriteFile(ca, pems, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := xtest.Build(t, "./viewer")
	home := t.TempDir()
	run := func(stdin string, env []string, args ...string) {
		cmd := exec.Command(bin, append([]string{"-broker", broker.URL, "-ca", ca}, args...)...)
		cmd.Env = append(os.Environ(), append([]string{"HOME=" + home, "XDG_CONFIG_HOME=" + home}, env...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if exitCode(err) != 1 || !strings.Contains(string(out), "the broker redirected to") {
			t.Errorf("viewer %v, redirected: exit %d: %s", args, exitCode(err), out)
		}
	}
	for _, target := range []string{plain.URL, other.URL} {
		mu.Lock()
		to = target
		mu.Unlock()
		run("", []string{"TETHER_API_KEY=tth_SECRETKEY"}, "create", "-ticket", "INC-1")
		run("alice\ncorrect horse battery\n", []string{"TETHER_API_KEY="}, "login")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		if strings.Contains(s, "SECRETKEY") || strings.Contains(s, "correct horse") {
			t.Errorf("a credential was sent where the broker redirected: %s", s)
		}
	}
}

// TestViewerLoginTokenPrivate: the saved login is readable by its owner
// only, also when its file or folder was there before with modes that let
// others read it (an older tool, a dotfiles checkout).
func TestViewerLoginTokenPrivate(t *testing.T) {
	b := startBroker(t)
	home := t.TempDir()
	dir := filepath.Join(home, ".config", "tether")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	os.Chmod(tok, 0o644)
	cmd := b.viewer(t, "login")
	cmd.Env = append(cmd.Env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "TETHER_API_KEY=")
	cmd.Stdin = strings.NewReader(b.admin.User + "\n" + b.admin.Password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	st, err := os.Stat(tok)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(tok); !strings.HasPrefix(string(data), b.URL()+" ") {
		t.Errorf("the saved login is %q", data)
	}
	if st.Mode().Perm() != 0o600 || dst.Mode().Perm() != 0o700 {
		t.Errorf("the login is saved in a file of mode %v in a folder of mode %v: others can read it", st.Mode().Perm(), dst.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the folder holds %d files, want the token alone", len(entries))
	}
}
