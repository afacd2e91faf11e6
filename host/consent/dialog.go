package consent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tether-support/tether/internal/protocol"
)

// Dialog asks with a native dialog: zenity on Linux desktops. Besides the
// questions it keeps a sharing window up while something is shared, with
// what the user can do about it.
type Dialog struct {
	zenity string

	mu        sync.Mutex
	asking    bool              // a question is on screen
	changed   chan struct{}     // closed when the sharing window must be redrawn
	shells    int               // terminals open on this computer
	transfers map[string]string // file name → "Receiving" or "Sending", while under way

	remotePress time.Time // when a technician's button, key or text last went in
	watchLogged bool      // why the sharing window is not kept in view was logged
}

// hideGuard is how long after a technician's button, key or text the
// sharing window may not be hidden: the window is on the shared screen,
// and a technician in control could press Hide as well as the user.
const hideGuard = 2 * time.Second

// RemotePress notes that a technician's button, key or text went into the
// desktop just now.
func (d *Dialog) RemotePress() {
	d.mu.Lock()
	d.remotePress = time.Now()
	d.mu.Unlock()
}

// pressedRecently says whether a technician's button, key or text went in
// within hideGuard.
func (d *Dialog) pressedRecently() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Since(d.remotePress) < hideGuard
}

// NewDialog finds zenity; it fails when the desktop has no dialog tool.
func NewDialog() (*Dialog, error) {
	path, err := exec.LookPath("zenity")
	if err != nil {
		return nil, fmt.Errorf("%w (zenity not found)", ErrNoFrontEnd)
	}
	return &Dialog{zenity: path, changed: make(chan struct{}), transfers: map[string]string{}}, nil
}

// Name is the front end's name for the log.
func (d *Dialog) Name() string { return "dialog (zenity)" }

// Show prints the status and redraws the sharing window.
func (d *Dialog) Show(status string) {
	fmt.Println(status)
	d.redraw()
}

// SetShells tells the sharing window how many terminals are open.
func (d *Dialog) SetShells(open int) {
	d.mu.Lock()
	d.shells = open
	d.mu.Unlock()
	d.redraw()
}

// SetTransfer tells the sharing window that a file is under way (verb:
// "Receiving" or "Sending") or no longer.
func (d *Dialog) SetTransfer(name, verb string, running bool) {
	d.mu.Lock()
	_, was := d.transfers[name]
	if running {
		d.transfers[name] = verb
	} else {
		delete(d.transfers, name)
	}
	d.mu.Unlock()
	if was != running {
		d.redraw()
	}
}

// sharingText is the sharing window's text: who can do what, then what is
// under way on this computer.
func sharingText(status string, shells int, transfers map[string]string) string {
	lines := []string{status}
	switch {
	case shells == 1:
		lines = append(lines, "A terminal is open: the technician can run commands as you.")
	case shells > 1:
		lines = append(lines, fmt.Sprintf("%d terminals are open: the technician can run commands as you.", shells))
	}
	names := slices.Sorted(maps.Keys(transfers))
	for _, name := range names {
		// A name from the user's disk (a download) may hold what would
		// start a line of its own.
		lines = append(lines, transfers[name]+" "+protocol.Printable(name)+"...")
	}
	return strings.Join(lines, "\n")
}

func (d *Dialog) redraw() {
	d.mu.Lock()
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

func (d *Dialog) setAsking(asking bool) {
	d.mu.Lock()
	d.asking = asking
	d.mu.Unlock()
	d.redraw()
}

// zenityText is s as zenity's --text shows it word for word: zenity reads
// backslash escapes (\n starts a line) and then Pango markup (<b>, <span
// size="x-large">), and a name or ticket from the broker must neither
// restyle the question nor, with a stray "&" or "<", blank it.
func zenityText(s string) string {
	return html.EscapeString(strings.ReplaceAll(s, `\`, `\\`))
}

// run runs zenity and returns what it printed. GTK may start helpers
// (a D-Bus or accessibility bus) that keep zenity's output open after it
// exits; the answer is in by then, so it waits no longer for them.
// started, when set, is told zenity's process id once it runs.
func (d *Dialog) run(ctx context.Context, args []string, started func(pid int)) ([]byte, error) {
	cmd := exec.CommandContext(ctx, d.zenity, args...)
	cmd.WaitDelay = time.Second
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Start()
	if err == nil {
		if started != nil {
			started(cmd.Process.Pid)
		}
		err = cmd.Wait()
	}
	var exit *exec.ExitError
	switch {
	case errors.Is(err, exec.ErrWaitDelay):
		err = nil
	case errors.As(err, &exit):
		exit.Stderr = stderr.Bytes()
	}
	return out.Bytes(), err
}

// Tell shows a message in a window titled title and returns when the user
// closes it, ctx ends or a minute has passed; isError picks the error icon.
func (d *Dialog) Tell(ctx context.Context, title, text string, isError bool) {
	kind := "--info"
	if isError {
		kind = "--error"
	}
	d.run(ctx, []string{kind, "--title", title, "--text", zenityText(text), "--width", "420", "--timeout", "60"}, nil)
}

// ShowCode shows the support code in a window until ctx ends (a
// technician entered the code, or it expired): the user reads it out from
// there however long that takes. Its button stops waiting; ShowCode
// reports whether the user pressed it or closed the window.
func (d *Dialog) ShowCode(ctx context.Context, title, text string) bool {
	_, err := d.run(ctx, []string{"--info", "--title", title, "--text", zenityText(text), "--width", "420", "--ok-label", "Stop waiting"}, nil)
	var exit *exec.ExitError
	return ctx.Err() == nil && (err == nil || errors.As(err, &exit) && exit.ExitCode() == 1 && !notShown(exit.Stderr))
}

// Ask shows a checklist of the requested permissions with Allow and Deny.
// The sharing window steps aside meanwhile: it would cover the question.
func (d *Dialog) Ask(ctx context.Context, req protocol.ConsentRequest) ([]string, error) {
	d.setAsking(true)
	defer d.setAsking(false)
	text := question(req) + ".\nTick what you allow. No answer in " + strconv.Itoa(req.TimeoutSeconds) + " seconds means no."
	for {
		args := []string{"--list", "--checklist", "--title", "Tether: remote support request", "--text", zenityText(text),
			"--column", "Allow", "--column", "Permission", "--column", "What it lets them do",
			"--ok-label", "Allow", "--cancel-label", "Deny", "--separator", ",",
			"--timeout", strconv.Itoa(req.TimeoutSeconds), "--width", "520", "--height", "360"}
		for _, p := range req.Permissions {
			args = append(args, "FALSE", p, Descriptions[p])
		}
		out, err := d.run(ctx, args, nil)
		var exit *exec.ExitError
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.As(err, &exit) && exit.ExitCode() == 5: // zenity's own timeout
			return nil, context.DeadlineExceeded
		case errors.As(err, &exit) && exit.ExitCode() == 1 && !notShown(exit.Stderr): // Deny or the window closed
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("%w: zenity: %v %s", ErrNotShown, err, strings.TrimSpace(string(stderrOf(err))))
		}
		if granted, _ := parseAnswer(strings.TrimSpace(string(out)), req.Permissions); len(granted) > 0 {
			return granted, nil
		}
		// Allow with nothing ticked is not an answer: ask again.
		text = question(req) + ".\nTick at least one permission and press Allow, or press Deny."
	}
}

// notShown says whether zenity's standard error tells that its window
// could not open. zenity exits 1 then, as when the user presses Deny.
func notShown(stderr []byte) bool {
	return strings.Contains(string(stderr), "cannot open display")
}

func stderrOf(err error) []byte {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.Stderr
	}
	return nil
}

// actions lists what the user can do about st: pause or resume, take back
// each permission someone has, end. Nothing while nothing is shared.
func actions(st protocol.ConsentState) []string {
	var granted []string
	for _, p := range protocol.AllPermissions {
		for _, g := range st.Grants {
			if slices.Contains(g.Granted, p) && !slices.Contains(granted, p) {
				granted = append(granted, p)
			}
		}
	}
	if len(granted) == 0 && !st.Paused {
		return nil
	}
	list := []string{"pause"}
	if st.Paused {
		list = []string{"resume"}
	}
	for _, p := range granted {
		list = append(list, "revoke "+p)
	}
	return append(list, "end session")
}

// Serve keeps, for the life of the session, a sharing window up while
// something is shared and no question is open: who can do what, and the
// user's choices. It is redrawn when that changes.
func (d *Dialog) Serve(ctx context.Context, m *Manager) {
	note := "" // why the window is back, for its next showing
	for ctx.Err() == nil {
		status := m.Status()
		d.mu.Lock()
		asking, changed := d.asking, d.changed
		text := note + sharingText(status, d.shells, d.transfers)
		d.mu.Unlock()
		list := actions(m.State(""))
		if asking || len(list) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			continue
		}
		args := []string{"--list", "--radiolist", "--title", "Tether: sharing this computer", "--text", zenityText(text),
			"--column", "", "--column", "Action", "--ok-label", "Do it", "--cancel-label", "Hide for a minute",
			"--width", "520", "--height", "340", "--hide-header"}
		for i, a := range list {
			args = append(args, map[bool]string{true: "TRUE", false: "FALSE"}[i == 0], a)
		}
		window, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-changed:
				cancel()
			case <-window.Done():
			}
		}()
		// The window manager keeps it above the others meanwhile, and
		// unminimised by a technician.
		var watch sync.WaitGroup
		out, err := d.run(window, args, func(pid int) {
			watch.Go(func() { d.keepInView(window, pid, m.cfg.Logger) })
		})
		redraw := err != nil && window.Err() != nil // closed by us, not answered
		cancel()
		watch.Wait()
		pressed := d.pressedRecently()
		note = ""
		switch {
		case ctx.Err() != nil:
			return
		case redraw:
			continue
		case err != nil && pressed:
			// Hidden, or closed, just as a technician clicked or typed:
			// it may have been them. Only the user hides it.
			m.cfg.Logger.Warn("the sharing window closed just after a technician's click or key; shown again")
			note = "This window closed just as the technician clicked or typed, so it is back: only you can hide it.\n\n"
			continue
		case err != nil: // hidden: back after a minute, or when something changes
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			case <-changed:
			}
			continue
		}
		switch action := strings.TrimSpace(string(out)); {
		case action == "pause":
			m.SetPaused(true)
		case action == "resume":
			m.SetPaused(false)
		case action == "end session":
			m.End()
			return
		case strings.HasPrefix(action, "revoke "):
			m.Revoke(strings.TrimPrefix(action, "revoke "))
		}
	}
}
