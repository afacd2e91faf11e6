// Package shell runs the technician's terminals on the user's machine:
// one PTY per shell channel, running the user's own login shell as the
// user (the host never elevates), closed at once when the user revokes
// the permission or the session ends.
package shell

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/pion/webrtc/v4"
	"golang.org/x/sys/unix"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
)

// hangupGrace is how long a closed shell's processes have to exit after
// SIGHUP before they are killed.
const hangupGrace = 2 * time.Second

// exitDrain is how long after the shell exits its last output has to be
// read before the jobs it left holding the terminal are killed.
const exitDrain = 200 * time.Millisecond

// Config configures a Server.
type Config struct {
	// Shell is the program to run; default: $SHELL, else /bin/sh.
	Shell  string
	Logger *slog.Logger
	// OnChange, when set, is told how many shells are open.
	OnChange func(open int)
}

// Server runs the shells of one session.
type Server struct {
	cfg Config

	mu     sync.Mutex
	shells map[*term]struct{}
	wg     sync.WaitGroup
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Shell == "" {
		cfg.Shell = os.Getenv("SHELL")
	}
	if cfg.Shell == "" {
		cfg.Shell = "/bin/sh"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func(int) {}
	}
	return &Server{cfg: cfg, shells: map[*term]struct{}{}}
}

// term is one shell on one channel.
type term struct {
	dc      *webrtc.DataChannel
	allowed func() bool // whether its technician may still use a shell
	flow    *rtc.Flow
	pty     *os.File
	cmd     *exec.Cmd // the shell's keeper
	release *os.File  // closed, the keeper hangs up the shell and ends
	once    sync.Once
	ctx     context.Context
	stop    context.CancelFunc
	exited  chan struct{} // closed once the shell process has been reaped
	waitErr error         // how it exited, once exited is closed

	hiddenMu sync.Mutex
	hidden   bool        // what the viewer was last told: input is not shown
	recheck  *time.Timer // looks again a moment after the output stops

	pauseMu sync.Mutex
	paused  chan struct{} // while the viewer is behind: closed when it catches up
}

// setPaused stops or restarts the reading of the shell's output, as the
// viewer asks: a command writing fast then waits for the viewer's
// terminal, as it would for a local one.
func (t *term) setPaused(on bool) {
	t.pauseMu.Lock()
	defer t.pauseMu.Unlock()
	switch {
	case on && t.paused == nil:
		t.paused = make(chan struct{})
	case !on && t.paused != nil:
		close(t.paused)
		t.paused = nil
	}
}

// waitResumed returns once the viewer is not behind, or the shell closed.
func (t *term) waitResumed() {
	t.pauseMu.Lock()
	ch := t.paused
	t.pauseMu.Unlock()
	if ch == nil {
		return
	}
	select {
	case <-ch:
	case <-t.ctx.Done():
	}
}

// promptSettle is how long after its last output a program has to turn
// echo off and still be seen before anything is typed: some print their
// prompt first. Less than anyone needs to read a prompt and type.
const promptSettle = 100 * time.Millisecond

// checkHidden tells the viewer, through the broker, when the terminal
// starts or stops reading input it does not show, so that a password is
// not recorded as a command. It runs after output and before each
// keystroke reaches the PTY.
func (t *term) checkHidden() {
	t.hiddenMu.Lock()
	defer t.hiddenMu.Unlock()
	hidden := readsHidden(t.pty) // under the lock: the last look is the last word
	if hidden == t.hidden || t.ctx.Err() != nil {
		return
	}
	t.hidden = hidden
	typ := protocol.ShellShown
	if hidden {
		typ = protocol.ShellHidden
	}
	t.dc.SendText(string(protocol.EncodeShell(protocol.ShellMessage{Type: typ})))
}

// Attach starts a shell for a shell channel the broker opened, once it is
// open. allowed reports whether the technician behind it may use a shell
// now; every keystroke is checked.
func (s *Server) Attach(dc *webrtc.DataChannel, allowed func() bool) {
	if !allowed() {
		s.cfg.Logger.Warn("refused a shell the user has not allowed", "channel", dc.Label())
		dc.OnOpen(func() { dc.Close() })
		return
	}
	// The shell starts now, before the channel opens, so that no keystroke
	// that follows the opening is lost; its output waits for the opening.
	opened := make(chan struct{})
	t, err := s.start(dc, allowed, opened)
	if err != nil {
		s.cfg.Logger.Warn("start shell", "err", err)
		dc.OnOpen(func() {
			dc.Send([]byte("\r\nThe shell could not start: " + err.Error() + "\r\n"))
			dc.SendText(string(protocol.EncodeShell(protocol.ShellMessage{Type: protocol.ShellExit, Code: -1})))
			dc.Close()
		})
		return
	}
	// Taken back while the shell started, before CloseAll could see it:
	// it closes now rather than at the technician's next keystroke.
	if !allowed() {
		s.cfg.Logger.Warn("refused a shell the user took back as it started", "channel", dc.Label())
		s.close(t)
		return
	}
	dc.OnOpen(func() { close(opened) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if !allowed() {
			s.close(t)
			return
		}
		if !m.IsString {
			t.checkHidden()
			t.pty.Write(m.Data)
			return
		}
		msg, err := protocol.DecodeShell(m.Data)
		if err != nil {
			s.cfg.Logger.Warn("shell message refused", "err", err)
			return
		}
		switch msg.Type {
		case protocol.ShellResize:
			setSize(t.pty, msg.Cols, msg.Rows)
		case protocol.ShellPause, protocol.ShellResume:
			t.setPaused(msg.Type == protocol.ShellPause)
		}
	})
	dc.OnClose(func() { s.close(t) })
}

// start runs the shell on a new PTY and pumps its output to the channel.
func (s *Server) start(dc *webrtc.DataChannel, allowed func() bool, opened <-chan struct{}) (*term, error) {
	cmd, f, release, err := startKeeper(s.cfg.Shell, &pty.Winsize{Cols: 80, Rows: 24})
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", s.cfg.Shell, err)
	}
	// A shell refused as it starts has run nothing yet: its keeper is
	// killed, and the shell with it, without the wait for a hangup.
	refuse := func() {
		release.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}
	if f, err = pollable(f); err != nil {
		refuse()
		return nil, fmt.Errorf("run %s: %w", s.cfg.Shell, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	t := &term{dc: dc, allowed: allowed, flow: rtc.NewFlow(dc, rtc.TerminalMarks), pty: f, cmd: cmd, release: release, ctx: ctx, stop: stop, exited: make(chan struct{})}
	t.recheck = time.AfterFunc(time.Hour, t.checkHidden)
	t.recheck.Stop()
	s.mu.Lock()
	// The broker holds each technician to MaxShells; so does the user's
	// computer, whatever the broker lets through.
	mine := 0
	for other := range s.shells {
		if other.dc.Protocol() == dc.Protocol() {
			mine++
		}
	}
	if mine >= protocol.MaxShells {
		s.mu.Unlock()
		stop()
		f.Close()
		refuse()
		return nil, fmt.Errorf("at most %d terminals can be open at once", protocol.MaxShells)
	}
	s.shells[t] = struct{}{}
	n := len(s.shells)
	s.mu.Unlock()
	s.cfg.Logger.Info("shell opened", "channel", dc.Label(), "shell", s.cfg.Shell, "pid", cmd.Process.Pid)
	s.cfg.OnChange(n)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		t.waitErr = t.cmd.Wait()
		close(t.exited)
	}()
	go func() {
		defer s.wg.Done()
		select {
		case <-opened:
			s.pump(t)
		case <-ctx.Done():
		}
	}()
	return t, nil
}

// pump copies the PTY's output to the channel until the shell exits, then
// reports its exit code and closes the channel.
func (s *Server) pump(t *term) {
	// The shell's end ends the terminal even when something outside the
	// keeper's reach still holds it open (the read below would wait for
	// it): its keeper gone, the terminal closes a moment later.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-t.exited:
		case <-t.ctx.Done():
			return
		}
		select {
		case <-time.After(exitDrain):
			t.pty.Close()
		case <-t.ctx.Done():
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		t.waitResumed()
		n, err := t.pty.Read(buf)
		if n > 0 {
			if t.flow.Send(t.ctx, buf[:n]) != nil {
				break
			}
			t.checkHidden()
			t.recheck.Reset(promptSettle)
		}
		if err != nil {
			break
		}
	}
	<-t.exited
	code := 0
	if err := t.waitErr; err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else {
			code = -1
		}
	}
	if t.ctx.Err() == nil {
		t.dc.SendText(string(protocol.EncodeShell(protocol.ShellMessage{Type: protocol.ShellExit, Code: code})))
	}
	s.cfg.Logger.Info("shell closed", "channel", t.dc.Label(), "code", code)
	s.close(t)
}

// close ends one shell: its keeper is let go and the channel closed.
func (s *Server) close(t *term) {
	t.once.Do(func() {
		t.stop()
		t.recheck.Stop()
		// The keeper hangs up the shell and its jobs, as when a terminal
		// window closes, and kills whatever is left a moment later: a
		// revoked shell leaves nothing running.
		t.release.Close()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			select {
			case <-t.exited:
			case <-time.After(2 * hangupGrace):
				// A keeper stopped (SIGSTOP from the shell) never lets go:
				// what is below it is killed here, then the keeper.
				for _, pid := range descendants(t.cmd.Process.Pid) {
					syscall.Kill(pid, syscall.SIGKILL)
				}
				t.cmd.Process.Kill()
			}
		}()
		t.pty.Close()
		t.dc.Close()
		s.mu.Lock()
		delete(s.shells, t)
		n := len(s.shells)
		s.mu.Unlock()
		s.cfg.OnChange(n)
	})
}

// CloseAll closes every shell at once: the session ended.
func (s *Server) CloseAll() { s.closeWhere(func(*term) bool { return true }) }

// CloseDisallowed closes at once the shells of the technicians who may no
// longer use one: the user took the permission back or paused, or the
// technician left. Their output stops here, whatever the broker does.
func (s *Server) CloseDisallowed() { s.closeWhere(func(t *term) bool { return !t.allowed() }) }

func (s *Server) closeWhere(match func(*term) bool) {
	s.mu.Lock()
	ts := slices.Collect(maps.Keys(s.shells))
	s.mu.Unlock()
	for _, t := range ts {
		if match(t) {
			s.close(t)
		}
	}
}

// Close closes every shell and waits for them.
func (s *Server) Close() error {
	s.CloseAll()
	s.wg.Wait()
	return nil
}

// pollable returns the PTY f as a file the Go runtime waits on with its
// poller, closing f. The pty package leaves it in blocking mode: each read
// then holds a thread in the kernel, and the output the reading goroutine
// has just queued for the viewer waits until the runtime notices and hands
// its processor to another thread, a quarter of a millisecond of every
// echo. Resizes go through setSize, which keeps it so.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the terminal: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open the terminal: %w", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// setSize sets the terminal's size without putting the PTY back in
// blocking mode, as File.Fd (and pty.Setsize through it) would.
func setSize(f *os.File, cols, rows int) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(cols), Row: uint16(rows)})
	})
}
