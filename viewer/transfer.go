package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/reserve"
	"github.com/tether-support/tether/viewer/client"
)

// joinFor joins a session and waits until the user allows perm. If the
// user allows some of what the session asked but not perm (the session did
// not ask for it, or the user said no to it), it asks once more, for perm
// alone: the technician is running a command that needs it. A user who
// allows nothing is not asked again (the broker ends the session).
func joinFor(ctx context.Context, c *client.Client, id, perm string) (*client.Joined, error) {
	j, err := c.Join(ctx, id)
	if err != nil {
		return nil, err
	}
	allowed := func(p protocol.Permissions) bool { return slices.Contains(p.Granted, perm) && !p.Paused }
	if j.State() == "waiting" {
		fmt.Fprintln(os.Stderr, "Waiting for the user's computer to connect...")
	}
	fmt.Fprintf(os.Stderr, "Waiting for the user to allow %s...\n", perm)
	p, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool {
		return allowed(p) || (!p.Pending && p.Message != "")
	})
	if err == nil && !allowed(p) && !p.Paused && len(p.Granted) > 0 {
		fmt.Fprintf(os.Stderr, "%s Asking the user for %s...\n", printable(p.Message), perm)
		p, err = j.Ask(ctx, perm)
	}
	if err != nil {
		j.Close()
		return nil, err
	}
	if !allowed(p) {
		j.Close()
		if p.Paused {
			return nil, errors.New("the user has paused the session: try again when they resume")
		}
		if p.Message == "" {
			return nil, fmt.Errorf("the user has not allowed %s", perm)
		}
		return nil, fmt.Errorf("the user has not allowed %s: %s", perm, p.Message)
	}
	return j, nil
}

// progressBar prints a transfer's progress on standard error: on a
// terminal, one line redrawn at most a few times a second; elsewhere (a
// file, a pipe), a line now and then, as carriage returns would garble it.
type progressBar struct {
	name  string
	start time.Time
	from  int64 // bytes there before this run (a resume): not part of its speed
	last  time.Time
	tty   bool
	open  bool // a line is drawn without its newline
}

func newProgressBar(name string) *progressBar {
	return &progressBar{name: name, from: -1, tty: term.IsTerminal(int(os.Stderr.Fd()))}
}

func (b *progressBar) update(done, total int64) {
	if b.from < 0 {
		b.from, b.start = done, time.Now()
	}
	every := 200 * time.Millisecond
	if !b.tty {
		every = time.Second
	}
	if done < total && time.Since(b.last) < every {
		return
	}
	b.last = time.Now()
	pct := int64(100)
	if total > 0 {
		pct = done * 100 / total
	}
	rate := float64(done-b.from) / max(time.Since(b.start).Seconds(), 0.001) / (1 << 20)
	if !b.tty {
		fmt.Fprintf(os.Stderr, "%s %3d%% %d/%d bytes %.1f MiB/s\n", b.name, pct, done, total, rate)
		return
	}
	bar := strings.Repeat("#", int(pct/5)) + strings.Repeat(".", 20-int(pct/5))
	fmt.Fprintf(os.Stderr, "\r%s [%s] %3d%% %d/%d bytes %.1f MiB/s", b.name, bar, pct, done, total, rate)
	b.open = done < total
	if !b.open {
		fmt.Fprintln(os.Stderr)
	}
}

// stop ends a line the bar left open, so that what follows starts a line
// of its own.
func (b *progressBar) stop() {
	if b.open {
		fmt.Fprintln(os.Stderr)
		b.open = false
	}
}

// readable tells whether the first byte of file can be read.
func readable(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Read(make([]byte, 1)); err != nil && err != io.EOF {
		return err
	}
	return nil
}

func push(ctx context.Context, c *client.Client, args []string) error {
	id, rest := sessionArgs("push", "LOCAL [NAME]", 1, 2, args, nil)
	local, name := rest[0], ""
	if len(rest) == 2 {
		name = rest[1]
	}
	// Checked before the user is asked for anything.
	st, err := os.Stat(local)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("push: %s is not a file; folders and special files cannot be sent", local)
	}
	if err := readable(local); err != nil {
		return fmt.Errorf("push: %s cannot be read: %w", local, err)
	}
	j, err := joinFor(ctx, c, id, protocol.PermFiles)
	if err != nil {
		return err
	}
	defer j.Close()
	f, err := j.Files(ctx)
	if err != nil {
		return err
	}
	defer f.Close()
	f.KeepPartial = true // Ctrl+C: the next run carries on where this one stopped
	if name == "" {
		name = filepath.Base(local)
	}
	if err := f.CheckSize(name, st.Size()); err != nil {
		return fmt.Errorf("push %s: %w", local, err)
	}
	// A few seconds or more before the first byte goes.
	if st.Size() >= 256<<20 {
		fmt.Fprintf(os.Stderr, "Computing the SHA-256 of %s (%d bytes) before sending it...\n", local, st.Size())
	}
	bar := newProgressBar(filepath.Base(local))
	done, err := f.Push(ctx, local, name, bar.update)
	bar.stop()
	if err != nil {
		return fmt.Errorf("push %s: %w", local, err)
	}
	fmt.Printf("Sent %s (%d bytes, SHA-256 %s) to %s\n", local, done.Size, done.SHA256, printable(done.Path))
	return nil
}

func pull(ctx context.Context, c *client.Client, args []string) error {
	id, rest := sessionArgs("pull", "REMOTE [LOCAL]", 1, 2, args, nil)
	remote := rest[0]
	local := path.Base(remote)
	if len(rest) == 2 {
		local = rest[1]
	}
	// Checked before the user is asked for anything: into a folder, the
	// file keeps its name; elsewhere, the folder must exist.
	if st, err := os.Stat(local); err == nil && st.IsDir() {
		local = filepath.Join(local, path.Base(remote))
	}
	if st, err := os.Stat(filepath.Dir(local)); err != nil || !st.IsDir() {
		return fmt.Errorf("pull: there is no folder %s to put %s in", filepath.Dir(local), path.Base(remote))
	}
	if _, err := os.Lstat(local); err == nil {
		return fmt.Errorf("pull: %s exists; choose another name", local)
	}
	if err := reserve.Writable(filepath.Dir(local)); err != nil {
		return fmt.Errorf("pull: cannot write in %s: %w", filepath.Dir(local), err)
	}
	j, err := joinFor(ctx, c, id, protocol.PermFiles)
	if err != nil {
		return err
	}
	defer j.Close()
	f, err := j.Files(ctx)
	if err != nil {
		return err
	}
	defer f.Close()
	bar := newProgressBar(path.Base(remote))
	done, err := f.Pull(ctx, remote, local, bar.update)
	bar.stop()
	if err != nil {
		return fmt.Errorf("pull %s: %w", remote, err)
	}
	fmt.Printf("Fetched %s (%d bytes, SHA-256 %s) into %s\n", remote, done.Size, done.SHA256, local)
	return nil
}

func list(ctx context.Context, c *client.Client, args []string) error {
	id, rest := sessionArgs("ls", "[PATH]", 0, 1, args, nil)
	dir := "."
	if len(rest) > 0 {
		dir = rest[0]
	}
	j, err := joinFor(ctx, c, id, protocol.PermFiles)
	if err != nil {
		return err
	}
	defer j.Close()
	f, err := j.Files(ctx)
	if err != nil {
		return err
	}
	defer f.Close()
	listing, err := f.Listing(ctx, dir)
	if err != nil {
		return err
	}
	for _, e := range listing.Entries {
		name := e.Name
		if e.Dir {
			name += "/"
		}
		fmt.Printf("%-8s %12d  %s  %s\n", printable(e.Kind), e.Size, time.Unix(e.Mtime, 0).Format("2006-01-02 15:04"), printable(name))
	}
	if listing.Message != "" {
		fmt.Fprintln(os.Stderr, printable(listing.Message))
	}
	return nil
}

// shellExit is the code a remote shell exited with, which viewer shell
// exits with too, as ssh does: a script learns how its commands ended.
type shellExit int

func (e shellExit) Error() string { return fmt.Sprintf("the remote shell exited with code %d", int(e)) }

// firstWrite writes to w, and closes seen at the first write.
type firstWrite struct {
	w    io.Writer
	seen chan struct{}
	once sync.Once
}

func (f *firstWrite) Write(p []byte) (int, error) {
	f.once.Do(func() { close(f.seen) })
	return f.w.Write(p)
}

// runShell opens a remote shell on this terminal, in raw mode, following
// the terminal's size, until the shell exits or is closed.
func runShell(ctx context.Context, c *client.Client, args []string) error {
	n := 1
	id, _ := sessionArgs("shell", "", 0, 0, args, func(fs *flag.FlagSet) {
		// Checked as it is parsed: a number out of range is a usage error,
		// not a question to the user for a shell that cannot open.
		fs.Func("n", "shell number, to keep several apart (1-99; default 1)", func(s string) error {
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 || v > 99 {
				return errors.New("a shell number is 1 to 99")
			}
			n = v
			return nil
		})
	})
	j, err := joinFor(ctx, c, id, protocol.PermShell)
	if err != nil {
		return err
	}
	defer j.Close()
	fd := int(os.Stdin.Fd())
	cols, rows := 80, 24
	isTerm := term.IsTerminal(fd)
	if isTerm {
		if w, h, err := term.GetSize(fd); err == nil {
			cols, rows = w, h
		}
	}
	sh, err := j.Shell(ctx, n, cols, rows)
	if err != nil {
		return err
	}
	defer sh.Close()
	if isTerm {
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("raw mode: %w", err)
		}
		defer term.Restore(fd, old)
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				if w, h, err := term.GetSize(fd); err == nil {
					sh.Resize(w, h)
				}
			}
		}()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	shown := make(chan struct{}) // closed at the shell's first output
	go func() {
		defer wg.Done()
		io.Copy(&firstWrite{w: os.Stdout, seen: shown}, sh)
	}()
	go func() {
		if !isTerm {
			// Input from a pipe waits for the shell's prompt: until its
			// line editor takes the terminal, the terminal keeps 4095
			// characters of a line and cuts the rest.
			select {
			case <-shown:
			case <-sh.Done():
			}
		}
		io.Copy(sh, os.Stdin) // ends with the process: stdin reads cannot be interrupted
		if isTerm {
			return
		}
		// Input from a pipe or file has ended: the remote shell reads end
		// of input (Ctrl+D), as a script piped into a shell would. Again
		// each second, as every read after the end of a pipe sees the end:
		// one typed before the shell reads its terminal can be lost, and a
		// program the input started ends with it too.
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if _, err := sh.Write([]byte{0x04}); err != nil {
				return
			}
			select {
			case <-sh.Done():
				return
			case <-t.C:
			}
		}
	}()
	select {
	case <-sh.Done():
	case <-j.Done():
	case <-ctx.Done():
	}
	sh.Close()
	wg.Wait()
	if isTerm {
		fmt.Print("\r\n")
	}
	if code, ok := sh.ExitCode(); ok {
		if code != 0 {
			return shellExit(code)
		}
		return nil
	}
	if err := j.Over(); err != nil {
		return err // "session ended: …", or "disconnected: …" while it goes on
	}
	if why := j.ClosedBecause(protocol.PermShell); why != nil {
		return fmt.Errorf("the shell was closed: %w", why)
	}
	return errors.New("the shell was closed (the user revoked the permission, or left)")
}
