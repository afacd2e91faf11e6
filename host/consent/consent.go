// Package consent puts the technician's requests to the user and keeps
// what the user decided: who may see and do what, whether the session is
// paused. It is the user's own machine enforcing the user's will: the
// host checks Allowed before it sends a pixel or injects an event, however
// the broker behaves. Answers come from a front end: a native dialog where
// the desktop has one, the terminal otherwise. Nothing is ever granted
// without an answer.
package consent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tether-support/tether/internal/protocol"
)

// Descriptions of each permission, as the user reads them.
var Descriptions = map[string]string{
	protocol.PermView:      "see your screen",
	protocol.PermControl:   "use your mouse and keyboard",
	protocol.PermClipboard: "read and set your clipboard",
	protocol.PermFiles:     "send and fetch files",
	protocol.PermShell:     "run commands as you in a terminal",
}

// question says who asks and for what ticket, as the user reads it: "lee
// (technician, Acme IT) asks to connect to this computer for ticket
// INC-9", or, from someone connected already, "... asks for more on this
// computer ...".
func question(req protocol.ConsentRequest) string {
	who := oneLine(req.Viewer.Name) + " (" + oneLine(req.Viewer.Role)
	if org := oneLine(req.Viewer.Org); org != "" {
		who += ", " + org
	}
	q := who + ") asks to connect to this computer"
	if req.More {
		q = who + "), connected already, asks for more on this computer"
	}
	if t := oneLine(req.Ticket); t != "" {
		// Quoted, and short enough not to fill a row of its own: the
		// ticket is the technician's text, not the host's words.
		if r := []rune(t); len(r) > maxTicketShown {
			t = string(r[:maxTicketShown-1]) + "…"
		}
		q += ` for ticket "` + t + `"`
	}
	return protocol.Printable(q) // the words come from the broker
}

// maxTicketShown bounds the characters of a ticket the question shows.
const maxTicketShown = 40

// oneLine is s with each run of spaces made one: spaces padding a name or
// a ticket to the end of the row would start a line of the technician's
// own in the question, read as the host's.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// ErrNoFrontEnd is returned when there is no way to ask the user.
var ErrNoFrontEnd = errors.New("no way to ask for consent: run the host from a terminal, or install zenity")

// Prompter asks the user one question. It returns the permissions
// granted; none means denied. ctx carries the answer deadline.
type Prompter interface {
	Name() string
	Ask(ctx context.Context, req protocol.ConsentRequest) ([]string, error)
}

// Viewer is a technician the user let in.
type Viewer struct {
	Person  protocol.Person
	Granted []string
}

// Config configures a Manager.
type Config struct {
	Prompter Prompter
	Logger   *slog.Logger
	// OnChange is called with the new state after the user revoked,
	// paused or resumed; the host sends it to the broker.
	OnChange func(protocol.ConsentState)
	// OnAnswer is called with each answer to a question, which the host
	// sends to the broker: in turn with OnChange, so that a change the
	// user makes once they answered reaches the broker after the answer.
	OnAnswer func(protocol.ConsentAnswer)
	// OnEnd is called when the user ends the session.
	OnEnd func()
	// Show is called with a one-line status whenever it changes.
	Show func(status string)
	// OnAsk is called when a question opens. The user answers it on the
	// shared screen, so no technician may use the mouse and keyboard
	// until they have (Allowed says so); the host lets go of what a
	// technician holds down.
	OnAsk func()
	// Waiting makes the Manager start before the session does, while the
	// user waits for a technician to connect: until Start, nothing can be
	// paused, resumed or revoked, and the status says so. The user's
	// commands are answered from the start, never kept for later.
	Waiting bool
}

// ErrNotStarted is why nothing can be paused, resumed or revoked before a
// technician has connected.
var ErrNotStarted = errors.New("no technician has connected yet, so nothing is shared")

// ErrNotShown is (wrapped) why a question got no answer when the front
// end could not put it to the user (the dialog could not open). That is
// no decision of the user's: the answer says "not_shown", not "denied".
var ErrNotShown = errors.New("the question could not be shown")

// ErrWithdrawn is why a question ends when its technician left before the
// user answered it.
var ErrWithdrawn = errors.New("the technician left")

// Manager holds the user's decisions for one session.
type Manager struct {
	cfg Config
	ask sync.Mutex // one question at a time, held until its answer is recorded
	// told orders what the broker is told: an answer with the grant it
	// makes, a change with the state it leaves.
	told sync.Mutex

	mu      sync.Mutex
	viewers map[string]*Viewer
	paused  bool
	waiting bool // until Start
	asking  bool // a question is open
	// withdraw ends the questions of each technician, open or queued;
	// left holds the connections gone, whose questions may still be on
	// their way, with who they were (should the broker cut one off after
	// it left; nobody for one that was allowed nothing).
	withdraw map[string]map[*context.CancelCauseFunc]bool
	left     map[string]person
	// away keeps what the user allowed technicians who left, for
	// protocol.ReturnWithin: a reload of the console or the next viewer
	// command is the same person coming back, not someone to ask again.
	away map[person]awayGrants
}

// person is who a technician is to the user, whatever their connection.
type person struct{ name, role, org string }

// hasLeft reports whether the connection viewer left. m.mu is held.
func (m *Manager) hasLeft(viewer string) bool {
	_, ok := m.left[viewer]
	return ok
}

func personOf(p protocol.Person) person { return person{p.Name, p.Role, p.Org} }

type awayGrants struct {
	granted []string
	since   time.Time
}

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Prompter == nil {
		return nil, ErrNoFrontEnd
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func(protocol.ConsentState) {}
	}
	if cfg.OnAnswer == nil {
		cfg.OnAnswer = func(protocol.ConsentAnswer) {}
	}
	if cfg.OnEnd == nil {
		cfg.OnEnd = func() {}
	}
	if cfg.Show == nil {
		cfg.Show = func(string) {}
	}
	if cfg.OnAsk == nil {
		cfg.OnAsk = func() {}
	}
	return &Manager{cfg: cfg, viewers: map[string]*Viewer{}, waiting: cfg.Waiting, withdraw: map[string]map[*context.CancelCauseFunc]bool{}, left: map[string]person{},
		away: map[person]awayGrants{}}, nil
}

// Start says the session has started: a technician is connected.
func (m *Manager) Start() {
	m.mu.Lock()
	m.waiting = false
	m.mu.Unlock()
}

// Handle asks the user about req, records the answer and returns it,
// giving it to OnAnswer first unless ctx ended meanwhile.
func (m *Manager) Handle(ctx context.Context, req protocol.ConsentRequest) protocol.ConsentAnswer {
	session := ctx
	ctx, withdraw := context.WithCancelCause(ctx)
	defer withdraw(nil)
	m.mu.Lock()
	if m.withdraw[req.Viewer.ID] == nil {
		m.withdraw[req.Viewer.ID] = map[*context.CancelCauseFunc]bool{}
	}
	m.withdraw[req.Viewer.ID][&withdraw] = true
	if m.hasLeft(req.Viewer.ID) {
		withdraw(ErrWithdrawn)
	}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.withdraw[req.Viewer.ID], &withdraw)
		if len(m.withdraw[req.Viewer.ID]) == 0 {
			delete(m.withdraw, req.Viewer.ID)
		}
		m.mu.Unlock()
	}()
	// What is granted is told before any change the user makes after it
	// (see changed): told after a revoke, the answer would give the
	// broker back what the user had just taken.
	tell := func(answer protocol.ConsentAnswer) {
		if session.Err() == nil { // the session is over: the question went with it
			m.cfg.OnAnswer(answer)
		}
	}

	m.told.Lock()
	if answer, ok := m.welcomeBack(req); ok {
		tell(answer)
		m.told.Unlock()
		m.cfg.Show(m.Status())
		return answer
	}
	m.told.Unlock()

	// One question at a time, answered, recorded and shown: a command
	// the user typed after the answer waits for it (see Terminal.Serve).
	m.ask.Lock()
	defer m.ask.Unlock()
	answer := m.question(ctx, req)
	m.told.Lock()
	if len(answer.Granted) > 0 {
		m.mu.Lock()
		if m.hasLeft(req.Viewer.ID) { // answered as they left: nobody to share with
			answer = protocol.ConsentAnswer{ID: req.ID, Reason: "withdrawn"}
		} else {
			m.grantLocked(req.Viewer, answer.Granted)
		}
		m.mu.Unlock()
	}
	tell(answer)
	m.told.Unlock()
	if answer.Reason != "withdrawn" {
		m.cfg.Logger.Info("consent answered", "technician", req.Viewer.Name, "answer", answer.Reason, "granted", strings.Join(answer.Granted, ","))
		m.cfg.Show(m.Status())
	}
	return answer
}

// question puts req to the user and returns their answer: only what was
// asked can be granted. m.ask is held.
func (m *Manager) question(ctx context.Context, req protocol.ConsentRequest) protocol.ConsentAnswer {
	answer := protocol.ConsentAnswer{ID: req.ID, Reason: "granted"}
	if errors.Is(context.Cause(ctx), ErrWithdrawn) { // gone while an earlier question was open
		answer.Reason = "withdrawn"
		return answer
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(req.TimeoutSeconds)*time.Second)
	defer cancel()
	m.setAsking(true)
	granted, err := m.cfg.Prompter.Ask(ctx, req)
	m.setAsking(false)
	switch {
	case errors.Is(context.Cause(ctx), ErrWithdrawn):
		answer.Reason = "withdrawn"
		m.cfg.Logger.Info("question withdrawn: the technician left", "technician", req.Viewer.Name)
	case errors.Is(err, context.Canceled): // the session ended meanwhile
		answer.Reason = "withdrawn"
	case errors.Is(err, context.DeadlineExceeded):
		answer.Reason = "timeout"
		m.cfg.Logger.Info("no answer in time: denied", "technician", req.Viewer.Name)
	case err != nil:
		answer.Reason = "not_shown"
		m.cfg.Logger.Warn("the question could not be shown to the user: nothing granted", "err", err)
	default:
		for _, p := range granted {
			if slices.Contains(req.Permissions, p) && !slices.Contains(answer.Granted, p) {
				answer.Granted = append(answer.Granted, p)
			}
		}
		if len(answer.Granted) == 0 {
			answer.Reason = "denied"
		}
	}
	return answer
}

// questionsSettled reports whether no question is open or being
// recorded.
func (m *Manager) questionsSettled() bool {
	if !m.ask.TryLock() {
		return false
	}
	m.ask.Unlock()
	return true
}

// setAsking says whether a question is open; while one is, no technician
// can answer it for the user.
func (m *Manager) setAsking(asking bool) {
	m.mu.Lock()
	m.asking = asking
	m.mu.Unlock()
	if asking {
		m.cfg.OnAsk()
	}
}

// grantLocked adds perms to what the technician's connection may do. m.mu
// is held.
func (m *Manager) grantLocked(who protocol.Person, perms []string) {
	v := m.viewers[who.ID]
	if v == nil {
		v = &Viewer{Person: who}
		m.viewers[who.ID] = v
	}
	for _, p := range perms {
		if !slices.Contains(v.Granted, p) {
			v.Granted = append(v.Granted, p)
		}
	}
}

// welcomeBack answers a question of a technician the user already allowed
// things, on a connection that left less than protocol.ReturnWithin ago or on
// another connection still here (a second console tab; the next viewer
// command, whose question can reach the host before the news that the
// last one left), with what the user allowed them, without asking: a
// connection's first question with what it covers (the rest the user
// declined or was never asked), a question for more only if it covers it
// all. ok is false when the user is to be asked.
func (m *Manager) welcomeBack(req protocol.ConsentRequest) (protocol.ConsentAnswer, bool) {
	m.mu.Lock()
	who := personOf(req.Viewer)
	var known []string
	if away, ok := m.away[who]; ok && time.Since(away.since) <= protocol.ReturnWithin {
		known = away.granted
	}
	for id, v := range m.viewers {
		if id != req.Viewer.ID && personOf(v.Person) == who {
			known = append(slices.Clone(known), v.Granted...)
		}
	}
	if m.hasLeft(req.Viewer.ID) {
		known = nil
	}
	answer := protocol.ConsentAnswer{ID: req.ID, Reason: "remembered"}
	for _, p := range req.Permissions {
		if slices.Contains(known, p) {
			answer.Granted = append(answer.Granted, p)
		}
	}
	if len(answer.Granted) == 0 || req.More && len(answer.Granted) < len(req.Permissions) {
		m.mu.Unlock()
		return protocol.ConsentAnswer{}, false
	}
	m.grantLocked(req.Viewer, answer.Granted)
	m.mu.Unlock()
	m.cfg.Logger.Info("technician came back: still allowed", "technician", req.Viewer.Name, "granted", strings.Join(answer.Granted, ","))
	return answer, true
}

// Left forgets a technician who left the session and withdraws the
// questions they asked. What the user allowed them is kept for
// protocol.ReturnWithin, unless the broker cut them off (their access was
// withdrawn). A connection cut off after it left (an admin reset or
// disabled the account a moment later) loses what is kept too: the
// person who comes back with the new password is asked again.
func (m *Manager) Left(viewer string, cutOff bool) {
	m.mu.Lock()
	if who, ok := m.left[viewer]; ok {
		if _, kept := m.away[who]; cutOff && kept {
			delete(m.away, who)
			m.cfg.Logger.Info("technician's access withdrawn: what they were allowed is forgotten", "technician", who.name)
		}
		m.mu.Unlock()
		return
	}
	m.left[viewer] = person{}
	for withdraw := range m.withdraw[viewer] {
		(*withdraw)(ErrWithdrawn)
	}
	v := m.viewers[viewer]
	delete(m.viewers, viewer)
	if v != nil {
		who := personOf(v.Person)
		m.left[viewer] = who
		away, ok := m.away[who]
		switch {
		case cutOff:
			delete(m.away, who)
		case len(v.Granted) > 0:
			// Another connection of theirs may have left a moment ago with
			// other grants: they keep both.
			if !ok || time.Since(away.since) > protocol.ReturnWithin {
				away.granted = nil
			}
			for _, p := range v.Granted {
				if !slices.Contains(away.granted, p) {
					away.granted = append(slices.Clone(away.granted), p)
				}
			}
			m.away[who] = awayGrants{granted: away.granted, since: time.Now()}
		}
	}
	m.mu.Unlock()
	if v != nil {
		m.cfg.Logger.Info("technician left", "technician", v.Person.Name)
		m.cfg.Show(m.Status())
	}
}

// Allowed reports whether any technician may do perm now. No one may
// use the mouse and keyboard while a question is open.
func (m *Manager) Allowed(perm string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.paused || m.asking && perm == protocol.PermControl {
		return false
	}
	for _, v := range m.viewers {
		if slices.Contains(v.Granted, perm) {
			return true
		}
	}
	return false
}

// AllowedFor reports whether the technician with this viewer id may do
// perm now.
func (m *Manager) AllowedFor(viewer, perm string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.viewers[viewer]
	return !m.paused && v != nil && slices.Contains(v.Granted, perm)
}

// Revoke takes perm away from every technician.
func (m *Manager) Revoke(perm string) error {
	if _, ok := Descriptions[perm]; !ok {
		return fmt.Errorf("unknown permission %q", perm)
	}
	m.mu.Lock()
	if m.waiting {
		m.mu.Unlock()
		return ErrNotStarted
	}
	changed := false
	for _, v := range m.viewers {
		if i := slices.Index(v.Granted, perm); i >= 0 {
			v.Granted = slices.Delete(v.Granted, i, i+1)
			changed = true
		}
	}
	// Those away lose it too: they do not get it back by returning.
	for who, away := range m.away {
		if i := slices.Index(away.granted, perm); i >= 0 {
			away.granted = slices.Delete(slices.Clone(away.granted), i, i+1)
			m.away[who] = away
			changed = true
		}
	}
	m.mu.Unlock()
	if !changed {
		return fmt.Errorf("no one has %s", perm)
	}
	m.changed(Revoked(perm))
	return nil
}

// Revoked is the Change of the state in which the user took perm back.
func Revoked(perm string) string { return "revoked " + protocol.PermWords(perm) }

// SetPaused pauses or resumes everything at once.
func (m *Manager) SetPaused(paused bool) error {
	m.mu.Lock()
	if m.waiting {
		m.mu.Unlock()
		return ErrNotStarted
	}
	same := m.paused == paused
	m.paused = paused
	m.mu.Unlock()
	if !same {
		m.changed(map[bool]string{true: "paused the session", false: "resumed the session"}[paused])
	}
	return nil
}

// End ends the session at the user's request.
func (m *Manager) End() {
	m.cfg.Logger.Info("the user ended the session")
	m.cfg.OnEnd()
}

func (m *Manager) changed(what string) {
	m.cfg.Logger.Info("consent changed", "change", what)
	m.told.Lock()
	m.cfg.OnChange(m.State(what))
	m.told.Unlock()
	m.cfg.Show(m.Status())
}

// State is the user's current will, for the broker.
func (m *Manager) State(change string) protocol.ConsentState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := protocol.ConsentState{Paused: m.paused, Change: change, Grants: []protocol.Grant{}}
	for id, v := range m.viewers {
		st.Grants = append(st.Grants, protocol.Grant{Viewer: id, Granted: slices.Clone(v.Granted)})
	}
	return st
}

// statusWords say what each permission lets a technician do, short
// enough for several to fit the status line.
var statusWords = map[string]string{
	protocol.PermView:      "see your screen",
	protocol.PermControl:   "use your mouse and keyboard",
	protocol.PermClipboard: "use your clipboard",
	protocol.PermFiles:     "send and fetch files",
	protocol.PermShell:     "run commands as you in a terminal",
}

// list joins phrases as a sentence does: "a", "a and b", "a, b, and c"
// (the last comma keeps "send and fetch files" apart from what follows).
func list(phrases []string) string {
	switch len(phrases) {
	case 0:
		return ""
	case 1:
		return phrases[0]
	case 2:
		return phrases[0] + " and " + phrases[1]
	}
	return strings.Join(phrases[:len(phrases)-1], ", ") + ", and " + phrases[len(phrases)-1]
}

// Status says in one line who can do what.
func (m *Manager) Status() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.waiting {
		return "Waiting for your technician to connect. Nothing is shared."
	}
	// A technician with the console and a viewer command open holds two
	// connections: the user hears of the person once, with all they may do.
	type person struct{ name, role, org string }
	can := map[person][]string{}
	for _, v := range m.viewers {
		if len(v.Granted) > 0 {
			p := person{v.Person.Name, v.Person.Role, v.Person.Org}
			can[p] = append(can[p], v.Granted...)
		}
	}
	var who []string
	for p, granted := range can {
		var can []string
		for _, perm := range protocol.AllPermissions {
			if slices.Contains(granted, perm) {
				can = append(can, statusWords[perm])
			}
		}
		if p.role == "supervisor" {
			// A supervisor watches the session live: say so plainly, with
			// what they themselves can do, so that it never reads as what
			// the technician next to them can ("view only" at the end of
			// the line read as the whole session's).
			only := ""
			if len(can) == 1 {
				only = "only "
			}
			who = append(who, fmt.Sprintf("%s (supervisor) is observing and can %s%s", p.name, only, list(can)))
			continue
		}
		who = append(who, fmt.Sprintf("%s (%s) can %s", p.name, p.role, list(can)))
	}
	slices.Sort(who)
	switch {
	case m.paused && len(who) == 0:
		// Paused stays paused when everyone left: whoever comes next
		// sees nothing until the user resumes. A technician may be here
		// still, asking: the status says what they can do, not who is here.
		return "PAUSED: nothing is shared until you resume. No one can see or control your computer."
	case m.paused:
		return "PAUSED: nothing is shared until you resume. Then " + protocol.Printable(strings.Join(who, "; ")) + " again."
	case len(who) == 0:
		return "No one can see or control your computer."
	default:
		return "Shared: " + protocol.Printable(strings.Join(who, "; ")) + "."
	}
}
