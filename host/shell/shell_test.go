package shell

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"golang.org/x/sys/unix"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
	"github.com/tether-support/tether/internal/rtc/rtctest"
)

// pair connects two real pion peers in this process.
func pair(t *testing.T) (broker, host *webrtc.PeerConnection) {
	t.Helper()
	newPC := func() *webrtc.PeerConnection {
		api, err := rtc.NewAPI(rtc.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { api.Close() })
		pc, err := api.NewPeerConnection(rtc.Sending{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return pc
	}
	broker, host = newPC(), newPC()
	if _, err := host.CreateDataChannel("control", nil); err != nil {
		t.Fatal(err)
	}
	rtctest.Connect(t, host, broker)
	return broker, host
}

type output struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	texts  []string // the host's control messages
	closed chan struct{}
}

func open(t *testing.T, broker *webrtc.PeerConnection, label string) (*webrtc.DataChannel, *output) {
	t.Helper()
	return openFor(t, broker, label, nil)
}

// openFor is open with the channel's options: the technician it is for,
// in its protocol, as the broker names them.
func openFor(t *testing.T, broker *webrtc.PeerConnection, label string, init *webrtc.DataChannelInit) (*webrtc.DataChannel, *output) {
	t.Helper()
	dc, err := broker.CreateDataChannel(label, init)
	if err != nil {
		t.Fatal(err)
	}
	out := &output{closed: make(chan struct{})}
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		out.mu.Lock()
		defer out.mu.Unlock()
		if m.IsString {
			out.texts = append(out.texts, string(m.Data))
		} else {
			out.buf.Write(m.Data)
		}
	})
	dc.OnClose(func() { close(out.closed) })
	return dc, out
}

func (o *output) wait(t *testing.T, want string) {
	t.Helper()
	o.match(t, regexp.MustCompile(regexp.QuoteMeta(want)))
}

// waitClosed waits until the channel closes, failing with what it means
// when it has not within d.
func (o *output) waitClosed(t *testing.T, d time.Duration, what string) {
	t.Helper()
	select {
	case <-o.closed:
	case <-time.After(d):
		t.Fatal(what)
	}
}

// match waits until the output matches re and returns the submatches.
func (o *output) match(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		o.mu.Lock()
		got := o.buf.String()
		o.mu.Unlock()
		if m := re.FindStringSubmatch(got); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing matching %q in %q", re, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serve runs a shell server whose technician may always use a shell,
// joined to the broker's peer it returns.
func serve(t *testing.T) (*Server, *webrtc.PeerConnection) {
	t.Helper()
	return serveShell(t, "/bin/sh")
}

// serveShell is serve with the shell to run.
func serveShell(t *testing.T, shell string) (*Server, *webrtc.PeerConnection) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	srv := New(Config{Shell: shell})
	t.Cleanup(func() { srv.Close() })
	broker, host := pair(t)
	host.OnDataChannel(func(dc *webrtc.DataChannel) { srv.Attach(dc, func() bool { return true }) })
	return srv, broker
}

// waitGone waits until the process pid, started by a shell, has ended
// with it.
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process %d %s outlived its shell", pid, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHostShellGrant: a shell runs only while the technician is allowed;
// without the grant the channel is closed and nothing runs;
// CloseDisallowed closes the shells of a technician no longer allowed (one
// who left) and leaves the others; CloseAll closes every shell at once.
func TestHostShellGrant(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	srv := New(Config{Shell: "/bin/sh"})
	defer srv.Close()
	broker, host := pair(t)
	allowed := map[string]bool{"shell-1": false, "shell-2": true, "shell-3": true}
	var mu sync.Mutex
	host.OnDataChannel(func(dc *webrtc.DataChannel) {
		label := dc.Label()
		srv.Attach(dc, func() bool { mu.Lock(); defer mu.Unlock(); return allowed[label] })
	})
	_, denied := open(t, broker, "shell-1")
	denied.waitClosed(t, 15*time.Second, "a shell channel without the grant stayed open")
	if denied.buf.Len() != 0 {
		t.Fatalf("output without the grant: %q", denied.buf.String())
	}
	var outs []*output
	var pids []int
	var dcs []*webrtc.DataChannel
	for _, label := range []string{"shell-2", "shell-3"} {
		dc, out := open(t, broker, label)
		dcs = append(dcs, dc)
		dc.OnOpen(func() {
			dc.SendText(string(protocol.EncodeShell(protocol.ShellMessage{Type: protocol.ShellResize, Cols: 101, Rows: 33})))
			// A job that ignores the hangup must not survive either.
			dc.Send([]byte("stty size; echo ok-$((20+22)); trap '' HUP; sleep 300 & echo bg=$!\n"))
		})
		out.wait(t, "33 101")
		out.wait(t, "ok-42")
		// The echoed command line shows "bg=" too; the pid comes after.
		m := out.match(t, regexp.MustCompile(`bg=(\d+)\r\n`))
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
		outs = append(outs, out)
	}
	mu.Lock()
	allowed["shell-2"] = false
	mu.Unlock()
	srv.CloseDisallowed()
	outs[0].waitClosed(t, 5*time.Second, "the shell of a technician no longer allowed stayed open")
	waitGone(t, pids[0], "ignoring SIGHUP")
	dcs[1].Send([]byte("echo still-$((1+1))\n"))
	outs[1].wait(t, "still-2")

	srv.CloseAll()
	outs[1].waitClosed(t, 5*time.Second, "a shell stayed open after CloseAll")
	waitGone(t, pids[1], "ignoring SIGHUP")
}

// TestHostShellLeavesNothing: what a shell starts that leaves its session
// (setsid, a double fork) and lets go of the terminal ends with the shell
// too, whether the user takes the shell back or it exits.
func TestHostShellLeavesNothing(t *testing.T) {
	for _, end := range []string{"taken back", "exits", "keeper signalled", "keeper stopped"} {
		t.Run(end, func(t *testing.T) {
			srv, broker := serve(t)
			dc, out := open(t, broker, "shell-1")
			dc.OnOpen(func() {
				if end == "keeper signalled" {
					// The shell's parent is its keeper: what a technician
					// can send it does not stop it.
					dc.Send([]byte("for s in TERM HUP INT QUIT USR1 ABRT TRAP SYS TSTP; do kill -$s $PPID; done\n"))
				}
				if end == "keeper stopped" { // the host deals with it once it does not let go
					dc.Send([]byte("kill -STOP $PPID\n"))
				}
				dc.Send([]byte("(setsid sh -c 'echo esc=$$; exec sleep 300 </dev/null >/dev/null 2>&1' &)\n"))
			})
			m := out.match(t, regexp.MustCompile(`esc=(\d+)\r\n`))
			pid, _ := strconv.Atoi(m[1])
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			if end == "exits" {
				dc.Send([]byte("exit\n"))
			} else {
				srv.CloseAll()
			}
			out.waitClosed(t, 5*time.Second, "the shell's channel stayed open")
			waitGone(t, pid, "out of the shell's session")
		})
	}
}

// TestHostShellsPerTechnician: the user's computer opens at most
// MaxShells shells for one technician, whatever the broker lets through;
// another technician has shells of their own.
func TestHostShellsPerTechnician(t *testing.T) {
	_, broker := serve(t)
	openAs := func(viewer string, n int) *output {
		t.Helper()
		dc, out := openFor(t, broker, fmt.Sprintf("shell-%d", n), &webrtc.DataChannelInit{Protocol: &viewer})
		dc.OnOpen(func() { dc.Send([]byte(fmt.Sprintf("echo shell-%d-$((6*7))\n", n))) })
		return out
	}
	for n := 1; n <= protocol.MaxShells; n++ {
		openAs("v_lee", n).wait(t, fmt.Sprintf("shell-%d-42", n))
	}
	over := openAs("v_lee", protocol.MaxShells+1)
	over.wait(t, fmt.Sprintf("at most %d terminals can be open at once", protocol.MaxShells))
	over.waitClosed(t, 10*time.Second, "a shell past the limit stayed open")
	openAs("v_kim", protocol.MaxShells+2).wait(t, fmt.Sprintf("shell-%d-42", protocol.MaxShells+2))
}

// TestHostShellKeeperKilled: a technician who kills the shell's keeper
// (SIGKILL cannot be caught) ends their shell with it: the terminal closes
// instead of staying open with nobody to end it.
func TestHostShellKeeperKilled(t *testing.T) {
	_, broker := serve(t)
	dc, out := open(t, broker, "shell-1")
	dc.OnOpen(func() { dc.Send([]byte("echo shell=$$; kill -KILL $PPID\n")) })
	m := out.match(t, regexp.MustCompile(`shell=(\d+)\r\n`))
	pid, _ := strconv.Atoi(m[1])
	out.waitClosed(t, 5*time.Second, "the terminal stayed open after its keeper was killed")
	waitGone(t, pid, "(the shell itself)")
}

// TestHostShellByName: a shell named without a path ($SHELL=bash) is found
// on the PATH, as a terminal finds it.
func TestHostShellByName(t *testing.T) {
	_, broker := serveShell(t, "sh")
	dc, out := open(t, broker, "shell-1")
	// The keeper's pipe from the host (its fd 3) does not reach the shell.
	dc.OnOpen(func() {
		dc.Send([]byte("echo ok-$((40+2)); test -e /proc/$$/fd/3 && echo fd3-open || echo fd3-closed\n"))
	})
	out.wait(t, "ok-42")
	out.wait(t, "fd3-closed")
}

// TestHostShellRevokedWhileStarting: a shell the user takes back while it
// starts (after the first look at the grant, before CloseAll can see it)
// closes at once, without waiting for a keystroke, and shows nothing.
func TestHostShellRevokedWhileStarting(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	srv := New(Config{Shell: "/bin/sh"})
	defer srv.Close()
	broker, host := pair(t)
	var looks atomic.Int32
	host.OnDataChannel(func(dc *webrtc.DataChannel) {
		srv.Attach(dc, func() bool { return looks.Add(1) == 1 })
	})
	_, out := open(t, broker, "shell-1")
	out.waitClosed(t, 15*time.Second, "a shell taken back as it started stayed open")
	if out.buf.Len() != 0 {
		t.Fatalf("output of a shell taken back: %q", out.buf.String())
	}
}

// TestHostShellExitWithJobRunning: a shell that exits while a job it
// started still holds the terminal closes at once, with its exit code and
// its last output, and the job does not outlive it.
func TestHostShellExitWithJobRunning(t *testing.T) {
	_, broker := serve(t)
	dc, out := open(t, broker, "shell-1")
	dc.OnOpen(func() { dc.Send([]byte("sleep 300 & echo bg=$!; echo last-words; exit 7\n")) })
	m := out.match(t, regexp.MustCompile(`bg=(\d+)\r\n`))
	pid, _ := strconv.Atoi(m[1])
	out.waitClosed(t, hangupGrace, "the shell exited but its channel stayed open while its job ran")
	out.wait(t, "last-words")
	out.mu.Lock()
	texts := slices.Clone(out.texts)
	out.mu.Unlock()
	if want := string(protocol.EncodeShell(protocol.ShellMessage{Type: protocol.ShellExit, Code: 7})); !slices.Contains(texts, want) {
		t.Fatalf("messages %q, want %q", texts, want)
	}
	waitGone(t, pid, "in the background")
}

// TestHostShellHiddenInput: while a program reads a password (echo off, in
// line mode) the host says so before anything is typed, even when the
// prompt comes before the echo is turned off; once the program is done it
// says input shows again. Bash's own line editing (echo off too, but not
// in line mode) is not hidden.
func TestHostShellHiddenInput(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	srv := New(Config{Shell: "/bin/bash"})
	defer srv.Close()
	broker, host := pair(t)
	host.OnDataChannel(func(dc *webrtc.DataChannel) { srv.Attach(dc, func() bool { return true }) })
	dc, out := open(t, broker, "shell-1")
	texts := func() []string {
		out.mu.Lock()
		defer out.mu.Unlock()
		return slices.Clone(out.texts)
	}
	hidden := string(protocol.EncodeShell(protocol.ShellMessage{Type: protocol.ShellHidden}))
	shown := string(protocol.EncodeShell(protocol.ShellMessage{Type: protocol.ShellShown}))
	dc.OnOpen(func() {
		dc.Send([]byte("PS1='$ '; echo ready-$((40+2))\r"))
	})
	out.wait(t, "ready-42")
	time.Sleep(2 * promptSettle)
	if got := texts(); len(got) != 0 {
		t.Fatalf("bash reading a command line: the host said %q", got)
	}
	// The prompt first, echo off a moment later (once stty has started):
	// the host looks again once the output stops. (The quotes keep the
	// command line that bash echoes from reading as the prompt.)
	dc.Send([]byte("printf 'Pass''word: '; stty -echo; read pw; stty echo; echo \"got ${#pw} characters\"\r"))
	out.wait(t, "Password: ")
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(texts(), []string{hidden}) {
		if time.Now().After(deadline) {
			t.Fatalf("at the password prompt the host said %q, want %q", texts(), hidden)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, key := range "hunter2" {
		dc.Send([]byte(string(key)))
	}
	dc.Send([]byte("\r"))
	out.wait(t, "got 7 characters")
	deadline = time.Now().Add(5 * time.Second)
	for !slices.Equal(texts(), []string{hidden, shown}) {
		if time.Now().After(deadline) {
			t.Fatalf("after the password the host said %q, want %q", texts(), []string{hidden, shown})
		}
		time.Sleep(5 * time.Millisecond)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if bytes.Contains(out.buf.Bytes(), []byte("hunter2")) {
		t.Fatalf("the password was echoed: %q", out.buf.String())
	}
}

// TestHostShellPTYStaysPolled: the PTY is read through the runtime's
// poller, also after a resize, so an echo goes out as soon as it is read
// and an idle shell does not hold a thread.
func TestHostShellPTYStaysPolled(t *testing.T) {
	srv, broker := serve(t)
	dc, out := open(t, broker, "shell-1")
	dc.OnOpen(func() {
		dc.SendText(string(protocol.EncodeShell(protocol.ShellMessage{Type: protocol.ShellResize, Cols: 97, Rows: 31})))
		dc.Send([]byte("stty size\n"))
	})
	out.wait(t, "31 97")
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for term := range srv.shells {
		rc, err := term.pty.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var flags int
		rc.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFL, 0) })
		if err != nil {
			t.Fatal(err)
		}
		if flags&unix.O_NONBLOCK == 0 {
			t.Fatal("the PTY is in blocking mode: each read holds a thread and delays the echo")
		}
	}
	if len(srv.shells) != 1 {
		t.Fatalf("%d shells open, want 1", len(srv.shells))
	}
}
