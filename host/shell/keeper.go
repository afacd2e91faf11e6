package shell

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/creack/pty"
)

// A keeper stands between the host and one shell. The host runs itself as
// one (keeperEnv set), on the shell's terminal, and the keeper runs the
// shell. On Linux it is a child subreaper: whatever the shell starts stays
// below it, even a process that leaves the shell's session (setsid, a
// double fork), so that when the shell ends, or the host lets go of it
// (closes its end of the pipe on fd 3, or dies), nothing the technician
// started outlives it. Its exit code is the shell's.
const keeperEnv = "TETHER_SHELL_KEEPER"

func init() {
	if os.Getenv(keeperEnv) == "1" {
		os.Exit(keep(os.Args[1:]))
	}
}

// startKeeper runs shell on a new terminal under a keeper. The keeper ends
// once release is closed, after a hangup and hangupGrace for the shell.
func startKeeper(shell string, size *pty.Winsize) (cmd *exec.Cmd, terminal, release *os.File, err error) {
	// The keeper runs the path found here: it looks for nothing itself.
	path, err := exec.LookPath(shell)
	if err != nil {
		return nil, nil, nil, err
	}
	if path, err = filepath.Abs(path); err != nil {
		return nil, nil, nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	defer r.Close()
	cmd = exec.Command(self(), path)
	cmd.Args[0] = "tether-shell"
	cmd.Env = append(os.Environ(), "TERM=xterm-256color", keeperEnv+"=1")
	if home, err := os.UserHomeDir(); err == nil {
		cmd.Dir = home
	}
	cmd.ExtraFiles = []*os.File{r}
	// A session of its own, without the terminal: the shell leads the
	// terminal's session, as it would in a terminal window.
	f, err := pty.StartWithAttrs(cmd, size, &syscall.SysProcAttr{Setsid: true})
	if err != nil {
		w.Close()
		return nil, nil, nil, err
	}
	return cmd, f, w, nil
}

// keep is the keeper: it runs the shell args[0] on its standard input's
// terminal and waits.
func keep(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "tether-shell: the shell to run is missing")
		return 2
	}
	os.Unsetenv(keeperEnv)
	syscall.CloseOnExec(3) // the shell has no use for the host's pipe
	host := os.NewFile(3, "host")
	becomeSubreaper()
	// The technician's shell runs as the same user and can signal its
	// keeper: every signal that can be caught is (ABRT, TRAP and SYS would
	// end a Go program too), so that only SIGKILL and SIGSTOP end or stop
	// it (see README). The shell starts with the default for each.
	signal.Notify(make(chan os.Signal, 1))
	shell, err := startShell(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "The shell could not start: %v\n", err)
		return 127
	}
	// The keeper holds no end of the terminal: the host's reads end once
	// the shell and everything it started have let go of it.
	os.Stdin.Close()
	os.Stdout.Close()
	os.Stderr.Close()

	exited := make(chan int, 1) // the shell's exit code
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, 0, nil)
			if err == syscall.EINTR {
				continue
			}
			if err != nil { // no child left
				return
			}
			if pid == shell.Pid {
				exited <- exitCode(ws)
			}
		}
	}()
	released := make(chan struct{})
	go func() {
		io.Copy(io.Discard, host)
		close(released)
	}()

	code := -1
	select {
	case code = <-exited:
		// Its last output has a moment to be read; then the jobs it left
		// holding the terminal go, as when a terminal window closes.
		select {
		case <-time.After(exitDrain):
		case <-released:
		}
	case <-released:
		// A hangup, as when a terminal window closes; whatever ignores it
		// is killed a moment later.
		syscall.Kill(-shell.Pid, syscall.SIGHUP)
		syscall.Kill(shell.Pid, syscall.SIGHUP)
		select {
		case code = <-exited:
		case <-time.After(hangupGrace):
		}
	}
	killAll(os.Getpid(), shell.Pid, reaped)
	return code
}

// startShell starts the login shell at path on the keeper's terminal, as
// the leader of the terminal's session. Killed with its keeper, it does
// not go on without one.
func startShell(path string) (*os.Process, error) {
	runtime.LockOSThread() // the parent-death signal follows the thread that forks
	defer runtime.UnlockOSThread()
	return os.StartProcess(path, []string{path, "-l"}, &os.ProcAttr{
		Env:   os.Environ(),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   shellAttr(),
	})
}

// killGiveUp bounds how long killAll tries: a process it may not kill (one
// started with sudo) would otherwise keep it trying for ever.
const killGiveUp = 5 * time.Second

// killAll kills the processes below keeper, the shell's session first,
// until reaped says none is left. A process forking as its parent is
// killed leaves a child the keeper adopts: it looks again until then.
func killAll(keeper, shell int, reaped <-chan struct{}) {
	giveUp := time.After(killGiveUp)
	for {
		syscall.Kill(-shell, syscall.SIGKILL)
		for _, pid := range descendants(keeper) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-reaped:
			return
		case <-giveUp:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// exitCode is a shell's exit code as a shell would report it: 128 plus
// the signal that killed it.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
