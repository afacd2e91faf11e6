package consent

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/tether-support/tether/internal/protocol"
)

func TestParseAnswer(t *testing.T) {
	asked := []string{protocol.PermView, protocol.PermControl, protocol.PermClipboard}
	for _, tt := range []struct {
		line string
		want []string
		ok   bool
	}{
		{"all", asked, true},
		{"Yes", asked, true},
		{"y", asked, true},
		{"1 3", []string{"view", "clipboard"}, true},
		{"control, view", []string{"control", "view"}, true},
		{"no", nil, true},
		{" N ", nil, true},
		{"", nil, false},
		{"yse", nil, false},
		{"1 9", nil, false},
		{"1 shell", nil, false},
	} {
		got, ok := parseAnswer(tt.line, asked)
		if ok != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("%q: %q %v, want %q %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

// lockedBuffer is the terminal's output, read while it is written.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) waitFor(t *testing.T, s string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		out := l.String()
		if strings.Count(out, s) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q (%d) in %q", s, n, out)
		}
	}
}

// TestTerminalAsksAgain: an empty line or a typo is not an answer: the
// question stays open until the user answers it.
func TestTerminalAsksAgain(t *testing.T) {
	in, typed := io.Pipe()
	defer typed.Close()
	var out lockedBuffer
	term := NewTerminal(in, &out)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go term.Serve(ctx, nil) // only answers are typed: no commands reach the manager

	answer := make(chan []string, 1)
	go func() {
		granted, _ := term.Ask(ctx, protocol.ConsentRequest{Viewer: protocol.Person{Name: "lee", Role: "technician"},
			Permissions: []string{protocol.PermView, protocol.PermControl}, TimeoutSeconds: 60})
		answer <- granted
	}()
	out.waitFor(t, "Allow? ", 1)
	io.WriteString(typed, "\n")
	out.waitFor(t, "Allow? ", 2)
	io.WriteString(typed, "yse\n")
	out.waitFor(t, "Allow? ", 3)
	select {
	case got := <-answer:
		t.Fatalf("answered %q before the user did", got)
	default:
	}
	io.WriteString(typed, "yes\n")
	if got := <-answer; !slices.Equal(got, []string{protocol.PermView, protocol.PermControl}) {
		t.Fatalf("granted %q", got)
	}
	out.waitFor(t, "Allowed: view, control.", 1)
}

// atTerminal is a consent manager asking on a terminal whose lines the
// test types, as the user would, and whose output it reads; its commands
// are served until the test ends.
func atTerminal(t *testing.T) (m *Manager, typed *io.PipeWriter, out *lockedBuffer, ctx context.Context) {
	t.Helper()
	in, typed := io.Pipe()
	t.Cleanup(func() { typed.Close() })
	out = &lockedBuffer{}
	term := NewTerminal(in, out)
	m, err := New(Config{Prompter: term, Show: term.Show})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	go term.Serve(ctx, m)
	return m, typed, out, ctx
}

// TestQuestionWithdrawn: when the technician who asked leaves, the question
// closes, one of theirs still queued is never shown, and a late answer
// shares nothing.
func TestQuestionWithdrawn(t *testing.T) {
	m, _, out, ctx := atTerminal(t)
	lee := protocol.Person{ID: "v_lee", Name: "lee", Role: "technician"}
	answers := make(chan protocol.ConsentAnswer, 2)
	for _, id := range []string{"c1", "c2"} {
		go func() {
			answers <- m.Handle(ctx, protocol.ConsentRequest{ID: id, Viewer: lee, Permissions: []string{protocol.PermView}, TimeoutSeconds: 60})
		}()
	}
	out.waitFor(t, "Allow? ", 1)
	m.Left(lee.ID, false)
	for range 2 {
		select {
		case a := <-answers:
			if a.Reason != "withdrawn" || len(a.Granted) != 0 {
				t.Fatalf("answer %+v", a)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the question stayed open after its technician left")
		}
	}
	out.waitFor(t, "They left the session", 1)
	if n := strings.Count(out.String(), "Allow? "); n != 1 {
		t.Fatalf("%d questions shown, want 1:\n%s", n, out.String())
	}
	if m.Allowed(protocol.PermView) {
		t.Fatal("view is shared with a technician who left")
	}
}

// TestStatusNamesEachPersonOnce: a technician with two connections (the
// console and a viewer command) is one person to the user, who may do
// what either connection was allowed.
func TestStatusNamesEachPersonOnce(t *testing.T) {
	m, typed, out, ctx := atTerminal(t)
	for i, c := range []struct {
		id, answer string
		perms      []string
	}{
		{"v_console", "all", []string{protocol.PermView, protocol.PermControl}},
		{"v_command", "all", []string{protocol.PermShell}},
		{"v_other", "1", []string{protocol.PermView, protocol.PermFiles}},
	} {
		name := "lee"
		if c.id == "v_other" {
			name = "kim"
		}
		done := make(chan protocol.ConsentAnswer, 1)
		go func() {
			done <- m.Handle(ctx, protocol.ConsentRequest{ID: c.id, Viewer: protocol.Person{ID: c.id, Name: name, Role: "technician"}, Permissions: c.perms, TimeoutSeconds: 60})
		}()
		out.waitFor(t, "Allow? ", i+1)
		io.WriteString(typed, c.answer+"\n")
		<-done
	}
	want := "Shared: kim (technician) can see your screen; lee (technician) can see your screen, use your mouse and keyboard, and run commands as you in a terminal."
	if got := m.Status(); got != want {
		t.Fatalf("status %q, want %q", got, want)
	}
}

// TestQuestionKeepsTheirWordsInPlace: a ticket padded with spaces to the
// end of a row would start a row of its own in the question, read as the
// host's words ("Only view is used; Type all."); a long one would fill
// rows. The ticket shows quoted, its spaces one, cut short.
func TestQuestionKeepsTheirWordsInPlace(t *testing.T) {
	req := protocol.ConsentRequest{Viewer: protocol.Person{Name: "lee", Role: "technician", Org: "Acme   IT"},
		Ticket: "INC-7" + strings.Repeat(" ", 40) + "Only view is used; the rest is the standard list. Type all."}
	want := `lee (technician, Acme IT) asks to connect to this computer for ticket "INC-7 Only view is used; the rest is th…"`
	if got := question(req); got != want {
		t.Errorf("question:\n%s\nwant\n%s", got, want)
	}
	req.Ticket = "INC-8"
	if got := question(req); !strings.HasSuffix(got, ` for ticket "INC-8"`) {
		t.Errorf("question: %s", got)
	}
}

// TestStatusSaysWhatSupervisorCan: the status line says what a watching
// supervisor was allowed, theirs apart from the technician's: it said
// "view only" whatever the user allowed them.
func TestStatusSaysWhatSupervisorCan(t *testing.T) {
	m, typed, out, ctx := atTerminal(t)
	for i, c := range []struct {
		id, name, role string
		perms          []string
	}{
		{"v_tech", "lee", "technician", []string{protocol.PermView, protocol.PermControl}},
		// Supervisors are asked to see only; a broker that asks for more
		// gets what the user allows, and the user must read it.
		{"v_sup", "sam", "supervisor", []string{protocol.PermView, protocol.PermClipboard}},
	} {
		done := make(chan protocol.ConsentAnswer, 1)
		go func() {
			done <- m.Handle(ctx, protocol.ConsentRequest{ID: c.id, Viewer: protocol.Person{ID: c.id, Name: c.name, Role: c.role}, Permissions: c.perms, TimeoutSeconds: 60})
		}()
		out.waitFor(t, "Allow? ", i+1)
		io.WriteString(typed, "all\n")
		<-done
	}
	want := "Shared: lee (technician) can see your screen and use your mouse and keyboard; sam (supervisor) is observing and can see your screen and use your clipboard."
	if got := m.Status(); got != want {
		t.Fatalf("status %q, want %q", got, want)
	}
}

// TestCtrlDKeepsCommands: on a terminal, Ctrl+D is no way to stop sharing
// and must not silently take the user's commands away: they still work,
// and the user is told once how to stop. When the terminal itself goes,
// the commands end instead of reading it in a loop.
func TestCtrlDKeepsCommands(t *testing.T) {
	keyboard, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out lockedBuffer
	term := NewTerminal(tty, &out)
	m, err := New(Config{Prompter: term})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		term.Serve(context.Background(), m)
	}()

	io.WriteString(keyboard, "\x04")
	out.waitFor(t, `Ctrl+D does not stop sharing: type "end", or press Ctrl+C.`, 1)
	io.WriteString(keyboard, "status\n")
	out.waitFor(t, "No one can see or control your computer.", 1)
	time.Sleep(300 * time.Millisecond) // as fast as a person presses it again
	io.WriteString(keyboard, "\x04")
	io.WriteString(keyboard, "status\n")
	out.waitFor(t, "No one can see or control your computer.", 2)
	if n := strings.Count(out.String(), "Ctrl+D"); n != 1 {
		t.Errorf("told %d times about Ctrl+D:\n%s", n, out.String())
	}

	keyboard.Close() // the terminal window closes
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("commands still served from a terminal that is gone")
	}
}

// TestStatusPausedAfterTechnicianLeft: the user paused, then the
// technician left; "status" must still say the session is paused, not that
// no one can see the computer as if nothing were held back.
func TestStatusPausedAfterTechnicianLeft(t *testing.T) {
	m, typed, out, ctx := atTerminal(t)
	lee := protocol.Person{ID: "v_lee", Name: "lee", Role: "technician"}
	done := make(chan protocol.ConsentAnswer, 1)
	go func() {
		done <- m.Handle(ctx, protocol.ConsentRequest{ID: "c1", Viewer: lee, Permissions: []string{protocol.PermView}, TimeoutSeconds: 60})
	}()
	out.waitFor(t, "Allow? ", 1)
	io.WriteString(typed, "all\n")
	<-done
	io.WriteString(typed, "pause\n")
	out.waitFor(t, "PAUSED", 1)
	m.Left(lee.ID, false)
	io.WriteString(typed, "status\n")
	out.waitFor(t, "PAUSED: nothing is shared until you resume. No one can see or control your computer.", 1)
}

// TestReturningTechnicianKeepsGrants: a technician who comes back soon
// after leaving (a console reload, the next viewer command) keeps what the
// user allowed, without a question; what the user revoked meanwhile stays
// revoked, and one whose access was withdrawn, here or after they left, is
// asked again.
func TestReturningTechnicianKeepsGrants(t *testing.T) {
	m, typed, out, ctx := atTerminal(t)
	lee := func(id string) protocol.Person { return protocol.Person{ID: id, Name: "lee", Role: "technician"} }
	ask := func(id string) protocol.ConsentAnswer {
		return m.Handle(ctx, protocol.ConsentRequest{ID: "c_" + id, Viewer: lee(id), TimeoutSeconds: 60,
			Permissions: []string{protocol.PermView, protocol.PermControl, protocol.PermClipboard}})
	}
	answered := make(chan protocol.ConsentAnswer, 1)
	go func() { answered <- ask("v1") }()
	out.waitFor(t, "Allow? ", 1)
	io.WriteString(typed, "1 2\n")
	if a := <-answered; !slices.Equal(a.Granted, []string{protocol.PermView, protocol.PermControl}) {
		t.Fatalf("first answer %+v", a)
	}

	// A second connection while the first is still here (another console
	// tab, or the next viewer command before the broker has said that
	// the last one left) is the same person too.
	if a := ask("v1b"); a.Reason != "remembered" || !slices.Equal(a.Granted, []string{protocol.PermView, protocol.PermControl}) {
		t.Fatalf("a second connection: %+v, want view and control kept", a)
	}
	m.Left("v1b", false)
	m.Left("v1", false)
	if a := ask("v2"); a.Reason != "remembered" || !slices.Equal(a.Granted, []string{protocol.PermView, protocol.PermControl}) {
		t.Fatalf("coming back: %+v, want view and control kept", a)
	}
	if !m.AllowedFor("v2", protocol.PermControl) {
		t.Fatal("the returning connection may not control")
	}
	// A question for more that the memory covers in part is put whole.
	go func() {
		answered <- m.Handle(ctx, protocol.ConsentRequest{ID: "c_more", Viewer: lee("v2"), More: true, TimeoutSeconds: 60,
			Permissions: []string{protocol.PermControl, protocol.PermShell}})
	}()
	out.waitFor(t, "Allow? ", 2)
	io.WriteString(typed, "no\n")
	if a := <-answered; a.Reason != "denied" {
		t.Fatalf("a question for more: %+v, want the user asked", a)
	}

	m.Left("v2", false)
	if err := m.Revoke(protocol.PermControl); err != nil {
		t.Fatalf("revoking control from a technician who is away: %v", err)
	}
	if a := ask("v3"); a.Reason != "remembered" || !slices.Equal(a.Granted, []string{protocol.PermView}) {
		t.Fatalf("coming back after a revoke: %+v, want view only", a)
	}

	// Withdrawn a moment after it left (an admin reset the account): what
	// is kept for its return goes, and the next connection is asked.
	m.Left("v3", false)
	m.Left("v3", true)
	go func() { answered <- ask("v3b") }()
	out.waitFor(t, "Allow? ", 3)
	io.WriteString(typed, "1\n")
	if a := <-answered; a.Reason == "remembered" || !slices.Equal(a.Granted, []string{protocol.PermView}) {
		t.Fatalf("after access withdrawn once gone: %+v, want the user asked (and allowing view)", a)
	}

	m.Left("v3b", true) // cut off by the broker: access withdrawn
	go func() { answered <- ask("v4") }()
	out.waitFor(t, "Allow? ", 4)
	io.WriteString(typed, "no\n")
	if a := <-answered; a.Reason != "denied" {
		t.Fatalf("after being cut off: %+v, want the user asked (and saying no)", a)
	}
	if n := strings.Count(out.String(), "Allow? "); n != 4 {
		t.Fatalf("%d questions, want 4:\n%s", n, out.String())
	}
}

// toldTerminal is a consent manager asking on a terminal, as atTerminal,
// that notes in order what it tells the broker; onAnswer runs as each
// answer is told, before it is noted.
func toldTerminal(t *testing.T, onAnswer func(m *Manager)) (m *Manager, typed *io.PipeWriter, out *lockedBuffer, ctx context.Context, told func() []string) {
	t.Helper()
	in, typed := io.Pipe()
	t.Cleanup(func() { typed.Close() })
	out = &lockedBuffer{}
	term := NewTerminal(in, out)
	var mu sync.Mutex
	var notes []string
	note := func(s string) {
		mu.Lock()
		notes = append(notes, s)
		mu.Unlock()
	}
	m, err := New(Config{Prompter: term, Show: term.Show,
		OnAnswer: func(a protocol.ConsentAnswer) {
			onAnswer(m)
			note("answer " + strings.Join(a.Granted, ","))
		},
		OnChange: func(st protocol.ConsentState) { note("change " + st.Change) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	go term.Serve(ctx, m)
	return m, typed, out, ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(notes)
	}
}

// TestRevokeWhileAnswerSentToldInOrder: a user who takes back a
// permission while their answer granting it is still on its way to the
// broker has the broker told the answer first and the revoke after it.
// Told the other way round, the answer would give the technician back
// what the user had just taken.
func TestRevokeWhileAnswerSentToldInOrder(t *testing.T) {
	revoked := make(chan error, 1)
	m, typed, out, ctx, told := toldTerminal(t, func(m *Manager) {
		// The user's "revoke control" comes in while the answer is sent
		// over a slow link.
		go func() { revoked <- m.Revoke(protocol.PermControl) }()
		time.Sleep(200 * time.Millisecond)
	})
	lee := protocol.Person{ID: "v_lee", Name: "lee", Role: "technician"}
	answered := make(chan protocol.ConsentAnswer, 1)
	go func() {
		answered <- m.Handle(ctx, protocol.ConsentRequest{ID: "c1", Viewer: lee, Permissions: []string{protocol.PermView, protocol.PermControl}, TimeoutSeconds: 60})
	}()
	out.waitFor(t, "Allow? ", 1)
	io.WriteString(typed, "all\n")
	<-answered
	if err := <-revoked; err != nil {
		t.Fatal(err)
	}
	if want := []string{"answer view,control", "change revoked control"}; !slices.Equal(told(), want) {
		t.Fatalf("the broker was told %q, want %q", told(), want)
	}
	if m.Allowed(protocol.PermControl) {
		t.Fatal("control is still allowed after the revoke")
	}
}

// TestRevokePastedWithAnswer: "all" and "revoke control" pasted at once
// grant, then revoke: the command acts once the answer is recorded, not
// before it (when it would find nothing to revoke and leave control
// granted).
func TestRevokePastedWithAnswer(t *testing.T) {
	m, typed, out, ctx, told := toldTerminal(t, func(*Manager) {
		time.Sleep(100 * time.Millisecond) // a slow link to the broker
	})
	lee := protocol.Person{ID: "v_lee", Name: "lee", Role: "technician"}
	go m.Handle(ctx, protocol.ConsentRequest{ID: "c1", Viewer: lee, Permissions: []string{protocol.PermView, protocol.PermControl}, TimeoutSeconds: 60})
	out.waitFor(t, "Allow? ", 1)
	io.WriteString(typed, "all\nrevoke control\n")
	out.waitFor(t, "can see your screen", 2) // the status after the answer, then after the revoke
	if want := []string{"answer view,control", "change revoked control"}; !slices.Equal(told(), want) {
		t.Fatalf("the broker was told %q, want %q\n%s", told(), want, out.String())
	}
	if m.Allowed(protocol.PermControl) || !m.Allowed(protocol.PermView) {
		t.Fatalf("after the revoke: control %v, view %v", m.Allowed(protocol.PermControl), m.Allowed(protocol.PermView))
	}
}

// TestTypeAheadIsNoAnswer: what a technician in control typed into the
// user's terminal before a question opened does not answer it: neither a
// line left without its Enter ("2 " and the user's "1" allowed both), nor
// a line finished just before the question, nor one still on its way as
// the question opens.
func TestTypeAheadIsNoAnswer(t *testing.T) {
	for _, ahead := range []string{"2 ", "2\n", "late 2\n"} {
		t.Run(strings.TrimSpace(ahead), func(t *testing.T) {
			master, tty, err := pty.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer master.Close()
			defer tty.Close()
			go io.Copy(io.Discard, master) // the terminal's echo
			var out lockedBuffer
			term := NewTerminal(tty, &out)
			m, err := New(Config{Prompter: term, Show: term.Show})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			go term.Serve(ctx, m)
			line, late := strings.CutPrefix(ahead, "late ")
			if !late {
				master.Write([]byte(line))
				time.Sleep(200 * time.Millisecond)
			}
			got := make(chan protocol.ConsentAnswer, 1)
			go func() {
				got <- m.Handle(ctx, protocol.ConsentRequest{ID: "q", Viewer: protocol.Person{ID: "v", Name: "lee", Role: "technician"},
					Permissions: []string{protocol.PermFiles, protocol.PermShell}, More: true, TimeoutSeconds: 5})
			}()
			if late { // pressed as the question opened, arriving a moment after
				time.Sleep(typeAheadWindow / 3)
				master.Write([]byte(line))
			}
			out.waitFor(t, "Allow? ", 1)
			master.Write([]byte("1\n"))
			if a := <-got; !slices.Equal(a.Granted, []string{protocol.PermFiles}) {
				t.Errorf("the user typed 1 (files) after %q was typed ahead, and granted %v", ahead, a.Granted)
			}
		})
	}
}
