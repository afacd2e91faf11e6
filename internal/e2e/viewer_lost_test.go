package e2e

import (
	"context"
	"io"
	"net"
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
	// Mostly waiting out the broker's or the network's silence: it runs
	// beside the other tests that wait.
	t.Parallel()
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
	waitText(t, &pushOut, `big.bin (?:\[[#.]+\])? *\d+% [1-9]\d*/`, 40*time.Second)

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
	// Mostly waiting for the broker and the user's computer to answer: it
	// runs beside the other tests that wait.
	t.Parallel()
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
		out := startCmd(t, cmd)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		waitText(t, out, `frames received: [1-9]`, 30*time.Second)
		return out, done
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

// askingShell runs 'viewer shell' against the broker at url in a terminal
// and returns once it waits for the user's answer: the host shows the
// question, and nobody answers it. lost checks that the command then ends
// within 45 s of since, as after about 30 s without a word from the broker,
// saying the connection was lost, and leaves the technician's terminal as
// it was.
func askingShell(t *testing.T, url, ca, key, id string, host *hostProc) (lost func(since time.Time)) {
	t.Helper()
	shell := exec.Command(xtest.Build(t, "./viewer"), "-broker", url, "-ca", ca, "shell", "-session", id)
	shell.Env = append(os.Environ(), "TETHER_API_KEY="+key, "TERM=xterm")
	var stderr syncBuffer
	shell.Stderr = &stderr
	ptmx, err := pty.StartWithSize(shell, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shell.Process.Kill(); ptmx.Close() })
	go io.Copy(io.Discard, ptmx)
	done := make(chan error, 1)
	go func() { done <- shell.Wait() }()
	termios := func() *unix.Termios {
		tio, err := unix.IoctlGetTermios(int(ptmx.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		return tio
	}
	before := termios()
	host.waitOutput(t, "Allow? ", 1, 30*time.Second)
	waitText(t, &stderr, `Waiting for the user to allow shell`, 10*time.Second)
	return func(since time.Time) {
		t.Helper()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("viewer shell exited with success after losing the broker; output:\n%s", stderr.String())
			}
			if !strings.Contains(stderr.String(), "disconnected: The connection to the broker was lost.") {
				t.Errorf("viewer shell does not say the connection was lost; output:\n%s", stderr.String())
			}
		case <-time.After(45*time.Second - time.Since(since)):
			t.Fatalf("viewer shell still waits for the user's answer %v after the broker went silent; output:\n%s", time.Since(since), stderr.String())
		}
		t.Logf("viewer shell ended %v after the broker went silent", time.Since(since))
		if after := termios(); after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
			t.Errorf("the technician's terminal is left changed: lflag %#x iflag %#x oflag %#x, was %#x %#x %#x", after.Lflag, after.Iflag, after.Oflag, before.Lflag, before.Iflag, before.Oflag)
		}
	}
}

// TestViewerBrokerStopsAnsweringWhileAsking: the broker freezes while
// 'viewer shell' waits for the user to answer its question. The command
// does not wait for an answer that cannot come.
func TestViewerBrokerStopsAnsweringWhileAsking(t *testing.T) {
	// Mostly waiting out the broker's or the network's silence: it runs
	// beside the other tests that wait.
	t.Parallel()
	display := xtest.StartXvfb(t, 320, 240)
	brokerCmd, url, ca, key := brokerProc(t)
	u, _ := dial.BrokerURL(url)
	c, err := client.New(client.Config{Broker: u, CAFile: ca, Token: key})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.CreateSession(context.Background(), "", protocol.PermView, protocol.PermShell)
	if err != nil {
		t.Fatal(err)
	}
	host := startHostAsking(t, display, "-broker", url, "-ca", ca, sess.Code)
	lost := askingShell(t, url, ca, key, sess.ID, host)

	if err := brokerCmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { brokerCmd.Process.Signal(syscall.SIGCONT) })
	lost(time.Now())
}

// TestViewerSignalingDiesWhileAsking: while 'viewer shell' waits for the
// user's answer, its connection to the broker's web port goes dead (a
// proxy or firewall on the way stops passing anything, and closes
// nothing), though the broker runs on and the picture's own connection
// still works. The command does not wait for an answer that cannot reach
// it.
func TestViewerSignalingDiesWhileAsking(t *testing.T) {
	// Mostly waiting out the broker's or the network's silence: it runs
	// beside the other tests that wait.
	t.Parallel()
	display := xtest.StartXvfb(t, 320, 240)
	b := startBroker(t)
	sess, err := b.client(t).CreateSession(context.Background(), "", protocol.PermView, protocol.PermShell)
	if err != nil {
		t.Fatal(err)
	}
	host := startHostAsking(t, display, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	path := newTCPPath(t, strings.TrimPrefix(b.URL(), "https://"))
	lost := askingShell(t, "https://"+path.addr(), b.CAFile(), b.admin.APIKey, sess.ID, host)

	path.cut()
	lost(time.Now())
}

// tcpPath passes TCP connections on to a target until it is cut: then it
// passes nothing more either way and closes nothing, as a network that
// drops every packet.
type tcpPath struct {
	ln   net.Listener
	dead chan struct{}
	once sync.Once

	mu    sync.Mutex
	conns []net.Conn
}

func newTCPPath(t *testing.T, target string) *tcpPath {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpPath{ln: ln, dead: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		p.drop()
	})
	pass := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			select {
			case <-p.dead:
				return
			default:
			}
			if n > 0 {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go pass(out, in)
			go pass(in, out)
		}
	}()
	return p
}

func (p *tcpPath) addr() string { return p.ln.Addr().String() }

// cut stops the path passing anything.
func (p *tcpPath) cut() { p.once.Do(func() { close(p.dead) }) }

// drop closes the connections on the path, as a network that went away
// and a router that says so.
func (p *tcpPath) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestHostBrokerStopsAnswering: the broker freezes while the user waits
// with a code it gave them. Within about 30 s the host says the
// connection was lost and ends, instead of showing a code no technician
// can use for as long as TCP takes to notice (minutes, or never behind a
// proxy).
func TestHostBrokerStopsAnswering(t *testing.T) {
	t.Parallel() // mostly waiting out the broker's silence
	display := xtest.StartXvfb(t, 320, 240)
	brokerCmd, url, ca, _ := brokerProc(t)
	host := startHost(t, display, "-broker", url, "-ca", ca)
	host.waitOutput(t, "Your support code: ", 1, 20*time.Second)
	if err := brokerCmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { brokerCmd.Process.Signal(syscall.SIGCONT) })
	start := time.Now()
	if code := host.wait(t, 90*time.Second); code == 0 {
		t.Errorf("the host exited with 0 after losing the broker")
	}
	if d := time.Since(start); d > 45*time.Second {
		t.Errorf("the host noticed the frozen broker after %v, want about 30 s", d.Round(time.Second))
	}
	if out := host.stderr.String(); !strings.Contains(out, "Tether: The connection to the support server was lost") || strings.Contains(out, "level=") {
		t.Errorf("the user reads:\n%s\nwant what happened in plain words alone", out)
	}
}
