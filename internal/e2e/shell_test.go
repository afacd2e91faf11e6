package e2e

import (
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/viewer/client"
)

// shellOutput collects what a shell prints.
func shellOutput(sh *client.Shell) *syncBuffer {
	var out syncBuffer
	go io.Copy(&out, sh)
	return &out
}

func waitText(t *testing.T, out *syncBuffer, re string, timeout time.Duration) []string {
	t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		if m := r.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows:\n%q", re, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// viewerShellInPTY runs `viewer shell` on the session in a terminal of 30
// rows by 100 columns, as a technician does; out collects what it shows.
// The test's end kills it.
func viewerShellInPTY(t *testing.T, fs *filesSession) (*exec.Cmd, *os.File, *syncBuffer) {
	t.Helper()
	cmd := fs.b.viewer(t, "shell", "-session", fs.id)
	cmd.Env = append(cmd.Env, "TERM=xterm")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); ptmx.Close() })
	var out syncBuffer
	go io.Copy(&out, ptmx)
	return cmd, ptmx, &out
}

// TestShellCLI: `viewer shell` in a real terminal (a pty): commands run on
// the user's machine as the user, the size follows the technician's
// terminal, and exiting the shell ends the command.
func TestShellCLI(t *testing.T) {
	// Mostly waiting for the broker and the user's computer to answer: it
	// runs beside the other tests that wait.
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	fs := startFilesSession(t, ctx)
	cmd, ptmx, out := viewerShellInPTY(t, fs)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// The prompt comes from the user's own shell, in their home.
	ptmx.WriteString("echo \"me=$(id -u) at=$PWD\"; stty size\r")
	m := waitText(t, out, `me=(\d+) at=(\S+)\r?\n30 100`, 20*time.Second)
	if m[1] != strconv.Itoa(os.Getuid()) || m[2] != fs.home {
		t.Fatalf("the shell runs as uid %s in %s; want %d in %s", m[1], m[2], os.Getuid(), fs.home)
	}
	// The technician's window grows: the remote terminal follows.
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 132}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool {
		ptmx.WriteString("stty size\r")
		time.Sleep(200 * time.Millisecond)
		return strings.Contains(out.String(), "40 132")
	})
	// A password typed where the terminal hides it is not a command. Echo
	// goes off before the prompt shows, as getpass(3) does it: typed at
	// once after a prompt printed first, the keys could beat a slow stty
	// and be shown (the host's own test covers that order).
	ptmx.WriteString("stty -echo; printf 'Pass''word: '; read pw; stty echo; echo \"got ${#pw} characters\"\r")
	waitText(t, out, `Password: `, 10*time.Second)
	for _, key := range "hunter2\r" {
		ptmx.WriteString(string(key))
		time.Sleep(20 * time.Millisecond) // a person typing
	}
	waitText(t, out, `got 7 characters`, 10*time.Second)
	ptmx.WriteString("echo $((6*7))-done; exit\r")
	waitText(t, out, `42-done`, 10*time.Second)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("viewer shell exited with %v after exit; output:\n%s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("viewer shell did not end after exit; output:\n%s", out.String())
	}
	waitFor(t, 5*time.Second, func() bool {
		return len(auditEvents(t, ctx, fs.b, fs.id, "shell.opened")) == 1 && len(auditEvents(t, ctx, fs.b, fs.id, "shell.closed")) == 1
	})
	// What was typed is in the trail, command by command.
	var typed []string
	for _, e := range auditEvents(t, ctx, fs.b, fs.id, "shell.command") {
		typed = append(typed, e.Detail["command"].(string))
	}
	if !slices.Contains(typed, "echo $((6*7))-done; exit") || !slices.Contains(typed, `echo "me=$(id -u) at=$PWD"; stty size`) ||
		!slices.Contains(typed, `stty -echo; printf 'Pass''word: '; read pw; stty echo; echo "got ${#pw} characters"`) {
		t.Errorf("shell commands in the audit trail: %q", typed)
	}
	if strings.Contains(strings.Join(typed, "\n"), "hunter2") || strings.Contains(out.String(), "hunter2") {
		t.Errorf("the password shows in the audit trail %q or on the technician's terminal", typed)
	}
}

// TestShellCLISignalRestoresTerminal: 'viewer shell' ended by a signal
// (kill's SIGTERM, or SIGHUP from a closing multiplexer or a script) puts
// the technician's terminal back as it was: echo and line editing on.
func TestShellCLISignalRestoresTerminal(t *testing.T) {
	// Mostly waiting for the broker and the user's computer to answer: it
	// runs beside the other tests that wait.
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			fs := startFilesSession(t, ctx)
			cmd, ptmx, out := viewerShellInPTY(t, fs)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			cooked := func() bool {
				tio, err := unix.IoctlGetTermios(int(ptmx.Fd()), unix.TCGETS)
				if err != nil {
					t.Fatal(err)
				}
				return tio.Lflag&unix.ICANON != 0 && tio.Lflag&unix.ECHO != 0
			}
			ptmx.WriteString("echo ready-$((6*7))\r")
			waitText(t, out, `ready-42`, 30*time.Second)
			if cooked() {
				t.Fatal("the terminal is not raw while the shell runs")
			}
			cmd.Process.Signal(sig)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("viewer shell still runs 20 s after %v", sig)
			}
			if !cooked() {
				t.Errorf("after %v the technician's terminal is left in raw mode (no echo, no line editing)", sig)
			}
		})
	}
}

// TestShellRevoke: two shells at once; the user revokes the shell
// permission and both close at once, their processes gone.
func TestShellRevoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	fs := startFilesSession(t, ctx)
	j := fs.join(t, ctx, protocol.PermShell)
	var shells []*client.Shell
	var pids []int
	for n := 1; n <= 2; n++ {
		sh, err := j.Shell(ctx, n, 80, 24)
		if err != nil {
			t.Fatal(err)
		}
		out := shellOutput(sh)
		sh.Write([]byte("echo pid=$$\r"))
		m := waitText(t, out, `pid=(\d+)`, 20*time.Second)
		pid, _ := strconv.Atoi(m[1])
		shells, pids = append(shells, sh), append(pids, pid)
	}
	if pids[0] == pids[1] {
		t.Fatal("both shells are one process")
	}
	// The user sees that terminals are open, and when they close.
	fs.host.waitOutput(t, "2 terminals are open on this computer", 1, 5*time.Second)
	fs.host.typeLine(t, "revoke shell")
	fs.host.waitOutput(t, "No terminal is open on this computer now.", 1, 5*time.Second)
	for i, sh := range shells {
		select {
		case <-sh.Done():
		case <-time.After(3 * time.Second):
			t.Fatalf("shell %d still open after the revoke", i+1)
		}
		if _, exited := sh.ExitCode(); exited {
			t.Errorf("shell %d reports a normal exit; it was closed", i+1)
		}
	}
	for _, pid := range pids {
		waitFor(t, 5*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	}
	// A new shell is refused now.
	if sh, err := j.Shell(ctx, 3, 80, 24); err == nil {
		select {
		case <-sh.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a shell opened after the revoke")
		}
	}
	// The user's revoke reaches the host first: a shell asked for in that
	// moment may reach the host, which refuses it (no output).
	var closed []auditEvent
	waitFor(t, 5*time.Second, func() bool {
		closed = auditEvents(t, ctx, fs.b, fs.id, "shell.closed")
		return len(closed) >= 2 && len(closed) == len(auditEvents(t, ctx, fs.b, fs.id, "shell.opened"))
	})
	ran := 0
	for _, e := range closed {
		if out, _ := e.Detail["output_bytes"].(float64); out > 0 {
			ran++
		}
	}
	if ran != 2 {
		t.Errorf("%d shells with output in the audit trail, want 2: %v", ran, closed)
	}
}

// TestShellEndsWithSession: ending the session closes the shell.
func TestShellEndsWithSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fs := startFilesSession(t, ctx)
	j := fs.join(t, ctx, protocol.PermShell)
	sh, err := j.Shell(ctx, 1, 80, 24)
	if err != nil {
		t.Fatal(err)
	}
	out := shellOutput(sh)
	sh.Write([]byte("echo pid=$$\r"))
	pid, _ := strconv.Atoi(waitText(t, out, `pid=(\d+)`, 20*time.Second)[1])
	if err := fs.c.EndSession(ctx, fs.id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sh.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the shell outlived the session")
	}
	waitFor(t, 5*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	if ev := events(t, ctx, fs.b, fs.id); !slices.Contains(ev, "shell.closed") {
		t.Errorf("no shell.closed in %v", ev)
	}
}

// TestShellEndsWhenUserClosesTerminal: the user who closes the terminal
// window the host runs in ends the session as with "end": the technician's
// shell closes with everything it started, also a command the technician
// left running in the background with nohup.
func TestShellEndsWhenUserClosesTerminal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fs := startFilesSession(t, ctx)
	j := fs.join(t, ctx, protocol.PermShell)
	sh, err := j.Shell(ctx, 1, 80, 24)
	if err != nil {
		t.Fatal(err)
	}
	out := shellOutput(sh)
	sh.Write([]byte("nohup sleep 600 >/dev/null 2>&1 & echo bg=$!\r"))
	pid, _ := strconv.Atoi(waitText(t, out, `bg=(\d+)`, 20*time.Second)[1])
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	fs.host.cmd.Process.Signal(syscall.SIGHUP) // as the closing terminal sends
	waitFor(t, 10*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	if code := fs.host.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("host exit code %d; stderr:\n%s", code, fs.host.stderr.String())
	}
	select {
	case <-j.Done():
		if j.EndReason() != "The user ended the session." {
			t.Errorf("the technician reads %q", j.EndReason())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the technician was not told the session ended")
	}
}

// TestShellOutlivesTechnicianOutage: the technician's own link going
// quiet for a few seconds (here their viewer is stopped, as a laptop's
// Wi-Fi drops) does not close their terminal on the user's computer: once
// the link is back, the same shell answers.
func TestShellOutlivesTechnicianOutage(t *testing.T) {
	// Mostly waiting out the technician's outage: it runs beside the
	// other tests that wait.
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	fs := startFilesSession(t, ctx)
	cmd, ptmx, out := viewerShellInPTY(t, fs)

	ptmx.WriteString("x=before-$((6*7))\r echo $x\r")
	waitText(t, out, `before-42`, 20*time.Second)
	cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(4 * time.Second) // the broker finds the link disconnected after 2
	cmd.Process.Signal(syscall.SIGCONT)
	// The shell variable shows it is the same shell.
	ptmx.WriteString("echo after-$x\r")
	waitText(t, out, `after-before-42`, 20*time.Second)
	if n := len(auditEvents(t, ctx, fs.b, fs.id, "shell.closed")); n != 0 {
		t.Errorf("the trail has %d shell.closed after the outage; want the shell still open", n)
	}
}

// TestShellCLIPiped: commands piped into 'viewer shell' run on the user's
// computer, a long line whole, and the command ends when its input does,
// with the shell's exit code.
func TestShellCLIPiped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fs := startFilesSession(t, ctx)
	cmd := fs.b.viewer(t, "shell", "-session", fs.id)
	// A line longer than a terminal keeps before the shell's line editor
	// takes it (4095 characters), and an exit code a script reads.
	cmd.Stdin = strings.NewReader("echo piped-$((6*7))\nprintf '%s' '" + strings.Repeat("A", 6000) + "' | wc -c | sed 's/^/len=/'\nexit 3\n")
	out := startCmd(t, cmd)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if exitCode(err) != 3 || !strings.Contains(out.String(), "piped-42") || !strings.Contains(out.String(), "len=6000") {
			t.Fatalf("viewer shell with piped commands: exit code %d (want the shell's 3)\n%s", exitCode(err), out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("viewer shell did not end with its input; output:\n%s", out.String())
	}
}

// TestShellCommandsNotFullScreenKeys: keys typed in a full-screen program
// (here less) are not shell commands in the audit trail, and the q that
// quits it does not run into the next command.
func TestShellCommandsNotFullScreenKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	fs := startFilesSession(t, ctx)
	cmd, ptmx, out := viewerShellInPTY(t, fs)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	ptmx.WriteString("seq 1 500 | less\r")
	waitText(t, out, `\x1b\[\?1049h`, 20*time.Second) // less has the screen
	for _, keys := range []string{"G", "/42\r", "q"} {
		ptmx.WriteString(keys)
		time.Sleep(200 * time.Millisecond) // a person reading
	}
	waitText(t, out, `\x1b\[\?1049l`, 10*time.Second) // and gave it back
	ptmx.WriteString("echo after-$((6*7)); exit\r")
	waitText(t, out, `after-42`, 10*time.Second)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("viewer shell did not end after exit; output:\n%s", out.String())
	}
	var typed []string
	waitFor(t, 5*time.Second, func() bool {
		typed = typed[:0]
		for _, e := range auditEvents(t, ctx, fs.b, fs.id, "shell.command") {
			typed = append(typed, e.Detail["command"].(string))
		}
		return len(auditEvents(t, ctx, fs.b, fs.id, "shell.closed")) == 1
	})
	if want := []string{"seq 1 500 | less", "echo after-$((6*7)); exit"}; !slices.Equal(typed, want) {
		t.Fatalf("shell commands in the audit trail: %q, want %q", typed, want)
	}
}

// TestShellExitCodeInTrail: a shell the technician leaves with `exit 3`
// is in the audit trail as ended with code 3; one the user closes by
// revoking has no code: it did not end by itself.
func TestShellExitCodeInTrail(t *testing.T) {
	// Mostly waiting for the broker and the user's computer to answer: it
	// runs beside the other tests that wait.
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	fs := startFilesSession(t, ctx)
	cmd, ptmx, out := viewerShellInPTY(t, fs)
	ptmx.WriteString("echo ready-$((6*7))\r")
	waitText(t, out, `ready-42`, 20*time.Second)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ptmx.WriteString("exit 3\r")
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("viewer shell did not end after exit 3; output:\n%s", out.String())
	}
	j := fs.join(t, ctx, protocol.PermShell)
	sh, err := j.Shell(ctx, 2, 80, 24)
	if err != nil {
		t.Fatal(err)
	}
	second := shellOutput(sh)
	sh.Write([]byte("echo second-$((6*7))\r"))
	waitText(t, second, `second-42`, 20*time.Second)
	fs.host.typeLine(t, "revoke shell")
	select {
	case <-sh.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Terminal 2 still open after the revoke")
	}

	codes := map[string]any{}
	waitFor(t, 10*time.Second, func() bool {
		for _, e := range auditEvents(t, ctx, fs.b, fs.id, "shell.closed") {
			codes[e.Detail["channel"].(string)] = e.Detail["code"]
		}
		return len(codes) == 2
	})
	if codes["shell-1"] != 3.0 || codes["shell-2"] != nil {
		t.Fatalf("shell.closed codes %v; want 3 for shell-1, and none for the revoked shell-2", codes)
	}
}
