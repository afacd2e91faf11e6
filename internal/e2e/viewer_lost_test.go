package e2e

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// TestViewerBrokerStopsAnswering: the broker freezes while the technician
// has a shell open and an upload under way. Within about as long as the
// user's computer waits (30 s), both commands end with an error that says
// the connection was lost, and the technician's terminal is back to normal
// (not left in raw mode).
func TestViewerBrokerStopsAnswering(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	display := xtest.StartXvfb(t, 320, 240)
	brokerCmd, url, ca, key := brokerProc(t)
	u, _ := dial.BrokerURL(url)
	c, err := client.New(client.Config{Broker: u, CAFile: ca, Token: key})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.CreateSession(ctx, "", protocol.PermView, protocol.PermFiles, protocol.PermShell)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	runHostEnv(t, display, true, []string{"HOME=" + home, "SHELL=/bin/bash"}, "-broker", url, "-ca", ca, sess.Code)
	viewer := func(args ...string) *exec.Cmd {
		cmd := exec.Command(xtest.Build(t, "./viewer"), append([]string{"-broker", url, "-ca", ca}, args...)...)
		cmd.Env = append(os.Environ(), "TETHER_API_KEY="+key, "TERM=xterm")
		return cmd
	}
	exited := func(cmd *exec.Cmd) chan error {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() })
		return done
	}

	shell := viewer("shell", "-session", sess.ID)
	// Its messages apart from the terminal, where the last of them could
	// be lost as the terminal closes.
	var shellErr syncBuffer
	shell.Stderr = &shellErr
	ptmx, err := pty.StartWithSize(shell, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var shellOut syncBuffer
	go io.Copy(&shellOut, ptmx)
	shellDone := exited(shell)
	// The technician's terminal as the line discipline sees it: raw while
	// the shell runs, cooked again once the viewer is done with it.
	cooked := func() bool {
		tio, err := unix.IoctlGetTermios(int(ptmx.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		return tio.Lflag&unix.ICANON != 0 && tio.Lflag&unix.ECHO != 0
	}
	ptmx.WriteString("echo ready-$((6*7))\r")
	waitText(t, &shellOut, `ready-42`, 30*time.Second)
	if cooked() {
		t.Fatal("the shell runs on a terminal not in raw mode")
	}

	big := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 2<<30); err != nil {
		t.Fatal(err)
	}
	push := viewer("push", "-session", sess.ID, big)
	var pushOut syncBuffer
	push.Stdout, push.Stderr = &pushOut, &pushOut
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	pushDone := exited(push)
	waitText(t, &pushOut, `big.bin \[[#.]+\] +\d+% [1-9]\d*/`, 40*time.Second)

	if err := brokerCmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { brokerCmd.Process.Signal(syscall.SIGCONT) })
	stopped := time.Now()
	for _, v := range []struct {
		name string
		done chan error
		out  *syncBuffer
	}{{"shell", shellDone, &shellErr}, {"push", pushDone, &pushOut}} {
		select {
		case err := <-v.done:
			if err == nil {
				t.Errorf("viewer %s exited with success after losing the broker; output:\n%s", v.name, v.out.String())
			}
			if !strings.Contains(v.out.String(), "disconnected: The connection to the broker was lost.") {
				t.Errorf("viewer %s does not say the connection was lost; output:\n%s", v.name, v.out.String())
			}
		case <-time.After(45*time.Second - time.Since(stopped)):
			t.Fatalf("viewer %s still runs %v after the broker stopped answering; output:\n%s", v.name, time.Since(stopped), v.out.String())
		}
	}
	t.Logf("both commands ended %v after the broker stopped answering", time.Since(stopped))
	if !cooked() {
		t.Error("the technician's terminal is left in raw mode")
	}
}

// TestViewerCutOffSessionGoesOn: an admin revokes the API key one 'viewer
// join' runs with. Only that connection ends and the session goes on, so
// that technician reads "disconnected", not "session ended", and the
// command fails; a colleague's 'viewer join' goes on. When the session
// then ends, the colleague's command says so and succeeds.
func TestViewerCutOffSessionGoesOn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	fs := startFilesSession(t, ctx)
	api := fs.b.URL() + "/api/v1"
	status, key := apiCall(t, fs.b.httpClient(t), "POST", api+"/keys", fs.b.admin.APIKey, `{"name":"join script","scopes":["sessions:read","sessions:join"]}`, nil)
	if status != 201 {
		t.Fatalf("create key: %d %v", status, key)
	}
	// join runs 'viewer join' with the admin's key, or with key.
	join := func(key string) (*syncBuffer, chan error) {
		cmd := fs.b.viewer(t, "join", "-session", fs.id)
		if key != "" {
			cmd.Env = append(cmd.Env, "TETHER_API_KEY="+key)
		}
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() })
		waitText(t, &out, `frames received: [1-9]`, 30*time.Second)
		return &out, done
	}
	out, done := join(key["key"].(string))
	stays, staysDone := join("")

	if status, got := apiCall(t, fs.b.httpClient(t), "DELETE", api+"/keys/"+key["id"].(string), fs.b.admin.APIKey, "", nil); status != 200 {
		t.Fatalf("revoke: %d %v", status, got)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("viewer join exited with success when cut off; output:\n%s", out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("viewer join still runs after its key was revoked; output:\n%s", out.String())
	}
	if s := out.String(); !strings.Contains(s, "disconnected: The API key you connected with was revoked.") || strings.Contains(strings.ToLower(s), "session ended") {
		t.Errorf("viewer join does not say only its connection ended:\n%s", s)
	}
	if s, err := fs.c.Session(ctx, fs.id); err != nil || s.State != "active" {
		t.Errorf("the session after the key was revoked: %+v, %v; want it active", s, err)
	}
	select {
	case err := <-staysDone:
		t.Fatalf("the colleague's viewer join ended (%v) when another key was revoked; output:\n%s", err, stays.String())
	default:
	}

	if err := fs.c.EndSession(ctx, fs.id); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-staysDone:
		if err != nil {
			t.Errorf("viewer join exited with %v when the session ended; output:\n%s", err, stays.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("viewer join still runs after the session ended; output:\n%s", stays.String())
	}
	if s := stays.String(); !strings.Contains(s, "Session ended: The technician ended the session.") || strings.Contains(s, "disconnected") {
		t.Errorf("viewer join does not say the session ended:\n%s", s)
	}
}
