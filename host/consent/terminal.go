package consent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/tether-support/tether/internal/protocol"
)

// Terminal asks on a terminal and takes the user's commands between
// questions: revoke a permission, pause, resume, end.
type Terminal struct {
	out io.Writer
	tty *os.File // the terminal read from, if it is one

	mu      sync.Mutex
	pending *openQuestion // nil when no question is open
	lines   chan typed
}

// typed is a line the user typed, and when it was read.
type typed struct {
	line string
	at   time.Time
}

// openQuestion is a question waiting for the user's answer line.
type openQuestion struct {
	asked  []string
	answer chan []string // what the user allowed
	shown  time.Time     // when the question was printed
}

// typeAheadWindow is how long keys a technician in control pressed just
// before a question opened (and with it their control stopped) may take
// to reach the terminal, through the X server and the terminal window:
// the question waits that long before it is shown.
const typeAheadWindow = 150 * time.Millisecond

// NewTerminal reads the user's lines from in until it closes. On a
// terminal, Ctrl+D is not the end of the input: the user who presses it
// still has every command (sharing goes on), and is told so once.
func NewTerminal(in io.Reader, out io.Writer) *Terminal {
	t := &Terminal{out: out, lines: make(chan typed)}
	f, ok := in.(*os.File)
	tty := ok && term.IsTerminal(int(f.Fd()))
	if tty {
		t.tty = f
	}
	go func() { // ends with in (the process's stdin): owned by the process
		defer close(t.lines)
		r := bufio.NewReader(in)
		told := false
		var lastEOF time.Time
		quickEOFs := 0
		for {
			line, err := r.ReadString('\n')
			if line = strings.TrimSpace(line); err == nil || line != "" {
				t.lines <- typed{line, time.Now()}
			}
			if err == nil {
				continue
			}
			if !tty || !errors.Is(err, io.EOF) {
				return
			}
			// A terminal that went away reads as one EOF after another at
			// once; a user does not press Ctrl+D that fast.
			if time.Since(lastEOF) < eofBurst {
				quickEOFs++
			} else {
				quickEOFs = 0
			}
			lastEOF = time.Now()
			if quickEOFs >= 5 {
				return
			}
			if !told {
				fmt.Fprintln(out, "Ctrl+D does not stop sharing: type \"end\", or press Ctrl+C.")
				told = true
			}
		}
	}()
	return t
}

// eofBurst is how close EOFs on a terminal must follow each other to mean
// the terminal is gone rather than Ctrl+D pressed again.
const eofBurst = 100 * time.Millisecond

// Name is the front end's name for the log.
func (t *Terminal) Name() string { return "terminal" }

// Ask prints the question and waits for the answer line.
func (t *Terminal) Ask(ctx context.Context, req protocol.ConsentRequest) ([]string, error) {
	// What was typed before the question is no answer to it: a line the
	// technician typed while in control, without Enter, would otherwise
	// begin the user's answer ("2 " and the user's "1" allow both). Keys
	// they pressed just before the question opened (their control stops as
	// it does) are given a moment to arrive first, then thrown away with
	// the rest; a line read before the question is shown does not answer it.
	select {
	case <-ctx.Done():
	case <-time.After(typeAheadWindow):
	}
	t.discardTypeAhead()
	q := &openQuestion{asked: req.Permissions, answer: make(chan []string, 1), shown: time.Now()}
	t.mu.Lock()
	t.pending = q
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.pending = nil
		t.mu.Unlock()
	}()

	var b strings.Builder
	fmt.Fprintf(&b, "\n%s.\nThey ask to:\n", question(req))
	for i, p := range req.Permissions {
		fmt.Fprintf(&b, "  %d. %-9s %s\n", i+1, p, Descriptions[p])
	}
	fmt.Fprintf(&b, "Type the numbers you allow (e.g. 1 2), \"all\", or \"no\". No answer in %d seconds means no.\nAllow? ", req.TimeoutSeconds)
	io.WriteString(t.out, b.String())

	select {
	case <-ctx.Done():
		switch {
		case errors.Is(context.Cause(ctx), ErrWithdrawn):
			fmt.Fprintln(t.out, "\nThey left the session: no answer needed.")
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			fmt.Fprintln(t.out, "\nNo answer: denied.")
		default:
			fmt.Fprintln(t.out, "\nThe session is over: no answer needed.")
		}
		return nil, ctx.Err()
	case granted := <-q.answer:
		if len(granted) == 0 {
			fmt.Fprintln(t.out, "Denied.")
		} else {
			fmt.Fprintf(t.out, "Allowed: %s.\n", strings.Join(granted, ", "))
		}
		return granted, nil
	}
}

// parseAnswer reads "1 3", "view control", "all" or "yes", and "no"; it
// returns false for anything else (an empty line, a typo).
func parseAnswer(line string, asked []string) ([]string, bool) {
	line = strings.ToLower(strings.TrimSpace(line))
	switch line {
	case "all", "a", "yes", "y":
		return slices.Clone(asked), true
	case "no", "n", "none":
		return nil, true
	}
	fields := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ',' })
	if len(fields) == 0 {
		return nil, false
	}
	var granted []string
	for _, f := range fields {
		p := f
		if n, err := strconv.Atoi(f); err == nil && n >= 1 && n <= len(asked) {
			p = asked[n-1]
		}
		if !slices.Contains(asked, p) {
			return nil, false
		}
		if !slices.Contains(granted, p) {
			granted = append(granted, p)
		}
	}
	return granted, true
}

// Serve routes the user's lines: to the open question if there is one,
// else to m as commands. It returns when ctx ends or input closes.
func (t *Terminal) Serve(ctx context.Context, m *Manager) {
	var answered *openQuestion // the last question answered, maybe not yet recorded
	for {
		var in typed
		var ok bool
		select {
		case <-ctx.Done():
			return
		case in, ok = <-t.lines:
			if !ok {
				return
			}
		}
		line := in.line
		t.mu.Lock()
		pending := t.pending
		t.mu.Unlock()
		if pending != nil && !isCommand(line) && in.at.Before(pending.shown) {
			continue // typed before the question: no answer to it
		}
		if pending != nil && !isCommand(line) {
			granted, ok := parseAnswer(line, pending.asked)
			if !ok {
				// A stray Enter or a typo must not decide for the user.
				fmt.Fprintf(t.out, "Type the numbers you allow (e.g. 1 2), \"all\", or \"no\".\nAllow? ")
				continue
			}
			select {
			case pending.answer <- granted:
				answered = pending
			default: // a line pasted after the answer, before the question closed
			}
			continue
		}
		if answered != nil {
			// A command typed right after the answer (both pasted at
			// once) acts on what the answer allowed, not before it.
			t.waitRecorded(m, answered)
			answered = nil
		}
		// The commands work while a question is open too: a user uneasy
		// at a question for more must be able to pause or end at once,
		// not after answering it.
		if ended := t.command(m, line); pending != nil && !ended {
			t.mu.Lock()
			if t.pending != nil { // still unanswered
				fmt.Fprint(t.out, "Allow? ")
			}
			t.mu.Unlock()
		}
	}
}

// waitRecorded waits, a second at most, until m has recorded the answer to
// q: the question that asked it is over, or another is open.
func (t *Terminal) waitRecorded(m *Manager, q *openQuestion) {
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		t.mu.Lock()
		next := t.pending
		t.mu.Unlock()
		if (next != nil && next != q) || m.questionsSettled() {
			return
		}
	}
}

// isCommand reports whether line is one of the user's commands rather
// than an answer to a question; no answer starts with these words.
func isCommand(line string) bool {
	f := strings.Fields(strings.ToLower(line))
	return len(f) > 0 && slices.Contains([]string{"revoke", "pause", "resume", "end", "stop", "quit", "status"}, f[0])
}

const help = `Commands: "revoke PERMISSION" (view, control, clipboard, files, shell), "pause", "resume", "end", "status".`

// command runs the user's command line; ended says it ended the session.
func (t *Terminal) command(m *Manager, line string) (ended bool) {
	f := strings.Fields(strings.ToLower(line))
	if len(f) == 0 {
		return false
	}
	switch {
	case f[0] == "revoke" && len(f) == 2:
		if err := m.Revoke(f[1]); err != nil {
			fmt.Fprintf(t.out, "Nothing to revoke: %v.\n", err)
		}
	case f[0] == "pause" || f[0] == "resume":
		if err := m.SetPaused(f[0] == "pause"); err != nil {
			fmt.Fprintf(t.out, "Nothing to %s: %v.\n", f[0], err)
		}
	case f[0] == "end" || f[0] == "stop" || f[0] == "quit":
		m.End()
		return true
	case f[0] == "status":
		fmt.Fprintln(t.out, m.Status())
	default:
		fmt.Fprintln(t.out, help)
	}
	return false
}

// Show prints a status line with the commands.
func (t *Terminal) Show(status string) {
	// The window's title says it too, in the taskbar where a minimised
	// terminal still shows; set at the end of a line, so that each line
	// still starts with what it says.
	title := "Tether: nothing shared"
	switch {
	case strings.HasPrefix(status, "Shared"):
		title = "Tether: SHARING this computer"
	case strings.HasPrefix(status, "PAUSED"):
		title = "Tether: paused, nothing shared"
	}
	fmt.Fprintf(t.out, "%s\n%s%s\n", status, help, t.titleSequence(title))
}

// SetTitle sets the terminal window's title, when what is written goes to
// a terminal.
func (t *Terminal) SetTitle(title string) { fmt.Fprint(t.out, t.titleSequence(title)) }

// titleSequence is what sets the terminal window's title, or "" when
// what is written does not go to a terminal (a log file).
func (t *Terminal) titleSequence(title string) string {
	if f, ok := t.out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return "\x1b]0;" + title + "\x07"
	}
	return ""
}
