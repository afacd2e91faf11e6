// Package signal runs the broker's support sessions: it issues one-time
// codes, accepts hosts (by code) and viewers (by login or API key) over
// WebSocket, drives the session state machine from waiting to active to
// ended, and hands SDP to the relay.
package signal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/record"
	"github.com/tether-support/tether/broker/relay"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/internal/joblog"
	"github.com/tether-support/tether/internal/limit"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
)

// DefaultPermissions are asked for when a request names none.
var DefaultPermissions = []string{protocol.PermView, protocol.PermControl, protocol.PermClipboard}

// CodeDigits is the length of a support code: 10^9 possibilities, and a code
// lives minutes and allows a handful of attempts per source.
const CodeDigits = 9

// Errors.
var (
	ErrNotFound  = errors.New("session not found")
	ErrForbidden = errors.New("not allowed")
	ErrEnded     = errors.New("session already ended")
	// ErrNotTechnician: only the session's technician or an admin may do
	// this, not a colleague invited in.
	ErrNotTechnician = errors.New("only the session's technician or an admin may do this")
)

// Config configures a Hub.
type Config struct {
	Store  *store.Store
	Auth   *auth.Authenticator
	API    *rtc.API
	Logger *slog.Logger
	Now    func() time.Time
	// CodeTTL is how long a new code stays valid (default 10 minutes).
	CodeTTL time.Duration
	// ViewerGrace is how long a session the user joined waits for a
	// technician who left (closed the tab, lost the network, ran one
	// viewer command and not yet the next) before it ends (default 2
	// minutes).
	ViewerGrace time.Duration
	// CodeAttempts limits host code attempts per source IP per minute
	// (default 10); the limit for all sources together is ten times that.
	CodeAttempts int
	// ConsentTimeout is how long the user has to answer a request; no
	// answer is no (default 60 s).
	ConsentTimeout time.Duration
	// Organisation is shown to users next to the technician's name.
	Organisation string
	// Notify, when set, hears of the events a ticket system may subscribe
	// to, as they enter the audit trail. It runs on the hub's goroutines
	// and must not call back into the hub.
	Notify func(context.Context, Event)
	// Recorder, when set, records every session from the moment someone
	// connects. Recording is then required: a session whose archive
	// cannot be started is refused, one whose archive fails is ended.
	Recorder *record.Recorder
}

// Event is an entry of a session's audit trail, as passed to Notify.
type Event struct {
	Session string
	Type    string // session.created, host.connected, consent.*, session.ended
	Actor   string
	At      time.Time
	Detail  json.RawMessage // the audit trail's detail object
}

// notify passes the events Notify wants on; others stay in the audit trail.
// notify hands an event the trail holds at at to the webhooks, with that
// time: read again, it could fall in the next second, and a ticket system
// would see another time than the API's.
func (h *Hub) notify(session, actor, typ string, at time.Time, detail []byte) {
	switch typ {
	case "session.created", "host.connected", "consent.granted", "consent.denied", "consent.timeout", "consent.not_shown", "consent.changed", "session.ended", "recording.ready":
		if h.cfg.Notify != nil {
			h.cfg.Notify(context.Background(), Event{Session: session, Type: typ, Actor: actor, At: at, Detail: detail})
		}
	}
}

func (c *Config) checkAndSetDefaults() error {
	switch {
	case c.Store == nil:
		return errors.New("signal: missing Store")
	case c.Auth == nil:
		return errors.New("signal: missing Auth")
	case c.API == nil:
		return errors.New("signal: missing API")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.CodeTTL == 0 {
		c.CodeTTL = 10 * time.Minute
	}
	if c.ViewerGrace == 0 {
		c.ViewerGrace = 2 * time.Minute
	}
	if c.CodeAttempts == 0 {
		c.CodeAttempts = 10
	}
	if c.ConsentTimeout == 0 {
		c.ConsentTimeout = 60 * time.Second
	}
	return nil
}

// Hub owns every live session of this broker.
type Hub struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader

	mu      sync.Mutex
	live    map[string]*live
	codes   *limit.Keyed // code attempts per source and per technician
	global  *rate.Limiter
	refused *limit.Keyed            // refused code attempts audited per source, one a minute
	pending map[string]*pendingHost // hosts waiting for a technician, by code hash
	stop    chan struct{}           // closed by Close
	closed  bool
	wg      sync.WaitGroup

	attachMu   sync.Mutex // serializes the creation of live sessions
	recMu      sync.Mutex
	recordings map[string]*record.Session // by session id, while live

	// unrecorded are ends the store refused (its disk full), written
	// as soon as it takes them; under mu.
	unrecorded []unrecordedEnd
	// unstored are the summaries of finished archives the store refused,
	// stored and announced as soon as it takes them; under mu.
	unstored []*record.Manifest

	counts  counters      // for Stats
	traffic relay.Traffic // every session's, for Stats

	// cuts are the disconnects of the last minute (a sign-out, a revoked
	// key), under mu: a connection authenticated before one and joining
	// after it is cut off too.
	cuts []recentCut
}

// recentCut is one disconnect: when, whom and why.
type recentCut struct {
	at     time.Time
	match  func(*viewer) bool
	reason string
}

type departure struct {
	v  *viewer
	at time.Time
}

// cutMemory is how long a disconnect is remembered: longer than a
// connection may take from its authentication to joining (helloTimeout).
const cutMemory = time.Minute

// unrecordedEnd is a session's end still to be written, with the reason
// and time it ended.
type unrecordedEnd struct {
	id, cause, reason string
	at                time.Time
}

// live is a session with someone connected.
type live struct {
	id       string
	codeHash string // the code the host joined with, to tell a second host it is in
	ticket   string
	perms    []string // what technicians ask the user for
	relay    *relay.Session
	host     *conn
	hostInfo *protocol.HostInfo
	// hostDone is closed once the host has let go of the session: it
	// ended the session itself, or its connection is gone.
	hostDone chan struct{}
	viewers  map[*conn]*viewer
	requests map[string]*request // questions the user has not answered yet
	paused   bool
	state    *protocol.ConsentState // the host's last word on the user's will
	grantsMu sync.Mutex             // tellGrants calls take turns
	// allowed is set once the user has allowed anyone anything: after
	// that, a "no" turns away one connection, not the whole session.
	allowed bool
	grace   *time.Timer
	ended   bool
	// departed are the connections that left in the last
	// protocol.ReturnWithin, whose grants the host keeps for their return
	// unless their access is withdrawn meanwhile.
	departed []departure
	// hostSilentSince is when the host's media connection went quiet;
	// zero while it answers.
	hostSilentSince time.Time
}

// New returns a Hub.
func New(cfg Config) (*Hub, error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return nil, err
	}
	h := &Hub{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "signal"),
		live:       map[string]*live{},
		codes:      limit.New(cfg.CodeAttempts, cfg.CodeAttempts),
		refused:    limit.New(1, 1),
		pending:    map[string]*pendingHost{},
		stop:       make(chan struct{}),
		recordings: map[string]*record.Session{},
		global:     rate.NewLimiter(rate.Limit(float64(cfg.CodeAttempts*10)/60), cfg.CodeAttempts*10),
	}
	h.wg.Add(2)
	go h.markAlive()
	go h.expireCodes()
	h.upgrader = websocket.Upgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		// Origins are checked by the handlers, which know which endpoint
		// a browser may use.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return h, nil
}

// Allowed reports what the user allows the technicians connected to the
// session now, together, and whether the session is paused; ok is false
// while the user's computer is not in the session on this broker.
func (h *Hub) Allowed(id string) (granted []string, paused, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.live[id]
	if l == nil || l.host == nil || l.ended {
		return nil, false, false
	}
	set := map[string]bool{}
	for _, v := range l.viewers {
		for _, p := range v.grants {
			set[p] = true
		}
	}
	granted = []string{}
	for _, p := range protocol.AllPermissions {
		if set[p] {
			granted = append(granted, p)
		}
	}
	return granted, l.paused, true
}

// CanAccess reports whether user may see and act on sess: its technician,
// a colleague invited in, supervisors and admins.
func (h *Hub) CanAccess(ctx context.Context, user *store.User, sess *store.Session) bool {
	if user.Role == auth.RoleAdmin || user.Role == auth.RoleSupervisor || sess.CreatedBy == user.ID {
		return true
	}
	ok, err := h.cfg.Store.IsParticipant(ctx, sess.ID, user.ID)
	return err == nil && ok
}

// Invite lets a colleague into a session, or hands it over to them; the
// user is asked before they see anything, as for everyone. Only the
// session's technician or an admin decides who works it: a colleague
// invited in could otherwise hand the session to themselves and shut its
// technician out of their own session, its trail and its recording.
func (h *Hub) Invite(ctx context.Context, by *store.User, id string, colleague *store.User, handOver bool) error {
	sess, err := h.MayInvite(ctx, by, id)
	if err != nil {
		return err
	}
	event := "participant.invited"
	if handOver {
		event = "session.handed_over"
		err = h.cfg.Store.HandOver(ctx, id, colleague.ID, h.cfg.Now())
	} else {
		err = h.cfg.Store.AddParticipant(ctx, id, colleague.ID, by.ID, h.cfg.Now())
	}
	if err != nil {
		return err
	}
	h.audit(id, by.Username, event, map[string]any{"colleague": colleague.Username, "role": colleague.Role})
	h.log.InfoContext(ctx, event, "session", id, "by", by.Username, "colleague", colleague.Username)
	if handOver {
		h.shutOut(ctx, sess, colleague)
	}
	return nil
}

// MayInvite returns the session if by may invite colleagues into it
// or hand it over: ErrNotFound or ErrForbidden when by may not see it,
// ErrNotTechnician when by is neither its technician nor an admin,
// ErrEnded when it is over. Asked first, so that who cannot invite learns
// nothing of the colleague they name.
func (h *Hub) MayInvite(ctx context.Context, by *store.User, id string) (*store.Session, error) {
	sess, err := h.cfg.Store.SessionByID(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNotFound
	case err != nil:
		return nil, err
	case !h.CanAccess(ctx, by, sess):
		return nil, ErrForbidden
	case by.Role != auth.RoleAdmin && by.ID != sess.CreatedBy:
		return nil, ErrNotTechnician
	case sess.State == store.StateEnded:
		return nil, ErrEnded
	}
	return sess, nil
}

// shutOut cuts off the live connections of the technician who handed
// sess over to colleague, now that it is no longer theirs (unless they
// may still see it: an admin, or invited in).
func (h *Hub) shutOut(ctx context.Context, sess *store.Session, colleague *store.User) {
	was, err := h.cfg.Store.UserByID(ctx, sess.CreatedBy)
	if err != nil || was.ID == colleague.ID {
		return
	}
	now, err := h.cfg.Store.SessionByID(ctx, sess.ID)
	if err != nil || h.CanAccess(ctx, was, now) {
		return
	}
	h.disconnect(func(v *viewer) bool { return v.userID == was.ID && v.session == sess.ID },
		"The session was handed over to "+colleague.Username+".")
}

// EndSession ends a session on behalf of a person or integration.
func (h *Hub) EndSession(ctx context.Context, user *store.User, id, reason string) (*store.Session, error) {
	sess, err := h.cfg.Store.SessionByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if !h.CanAccess(ctx, user, sess) {
		return nil, ErrForbidden
	}
	if sess.State == store.StateEnded {
		return sess, nil
	}
	cause, by := endedBy(user, sess)
	if reason == "" {
		reason = by
	}
	h.finish(id, user.Username, cause, reason)
	return h.cfg.Store.SessionByID(ctx, id)
}

// finish ends the session id, live or not, on behalf of actor.
func (h *Hub) finish(id, actor, cause, reason string) {
	h.mu.Lock()
	wasLive := h.live[id] != nil
	h.mu.Unlock()
	h.endAs(id, actor, cause, reason)
	if !wasLive { // end records the end of live sessions only
		h.audit(id, actor, "session.ended", map[string]any{"reason": reason, "cause": cause})
	}
}

// endedBy says who ended sess, for the user and the trail: the technician
// working it, a colleague invited in, or an admin stepping in on someone
// else's session.
func endedBy(user *store.User, sess *store.Session) (cause, reason string) {
	switch {
	case user.Role == auth.RoleAdmin && user.ID != sess.CreatedBy:
		return EndedByAdmin, fmt.Sprintf("An administrator (%s) ended the session.", user.Username)
	case user.ID != sess.CreatedBy:
		return EndedByTechnician, fmt.Sprintf("%s (%s) ended the session.", user.Username, user.Role)
	}
	return EndedByTechnician, "The technician ended the session."
}

// Why a session ended, in a word, for the metrics and the webhooks; the
// reason says it in a sentence, for people.
const (
	EndedByUser          = "user"             // the user ended it, or stopped their computer's program
	EndedByTechnician    = "technician"       // the technician working it ended it
	EndedByAdmin         = "admin"            // an admin ended someone else's session
	EndedDeclined        = "declined"         // the user turned the technician away
	EndedNotAsked        = "not_asked"        // the user's computer could not put the question to the user
	EndedCodeExpired     = "code_expired"     // the user never joined
	EndedHostLost        = "host_lost"        // the user's computer went away
	EndedDisplayGone     = "display_gone"     // the user's desktop closed
	EndedAbandoned       = "abandoned"        // every technician left and none came back
	EndedRecordingFailed = "recording_failed" // it could not be recorded, and recording is required
	EndedShutdown        = "shutdown"         // the broker was stopped
	EndedBrokerStopped   = "broker_stopped"   // the broker stopped without ending it (ended as it starts again)
)

// EndCauses are the causes above, in that order.
var EndCauses = []string{EndedByUser, EndedByTechnician, EndedByAdmin, EndedDeclined, EndedNotAsked, EndedCodeExpired, EndedHostLost,
	EndedDisplayGone, EndedAbandoned, EndedRecordingFailed, EndedShutdown, EndedBrokerStopped}

// EndInterrupted ends the sessions the store still has live: a broker
// that stopped without ending them (killed, crashed) cannot take them up
// again, and their users' computers have let go. Each ends as of the last
// moment it was known to go on (see store.LastAlive), not of this start:
// a session that ended at 14:02 must not read as lasting until the broker
// came back the next morning. started is when this broker started; what
// it stored since (a note on an unfinished recording) is no sign of life.
func (h *Hub) EndInterrupted(ctx context.Context, started time.Time) error {
	const reason = "The broker stopped during the session."
	for {
		live, err := h.cfg.Store.InterruptedSessions(ctx)
		if err != nil {
			return err
		}
		if len(live) == 0 {
			return nil
		}
		for _, id := range live {
			at, err := h.cfg.Store.LastAlive(ctx, id, started)
			if err != nil {
				return err
			}
			if err := h.cfg.Store.EndSession(ctx, id, EndedBrokerStopped, reason, at); err != nil {
				return fmt.Errorf("end session %s: %w", id, err)
			}
			h.log.Info("session ended", "session", id, "reason", reason, "last_alive", at)
			h.audit(id, "broker", "session.ended", map[string]any{"reason": reason, "cause": EndedBrokerStopped})
		}
	}
}

// aliveEvery is how often markAlive notes the live sessions in the store.
const aliveEvery = time.Minute

// markAlive notes in the store, every aliveEvery until Close, that the
// sessions with a host connected are going on. A broker stopped without
// ending them (SIGKILL, power loss) ends them at its next start as of
// their last mark, or a later entry of their audit trail.
func (h *Hub) markAlive() {
	defer h.wg.Done()
	tick := time.NewTicker(aliveEvery)
	defer tick.Stop()
	marking := joblog.Failing{What: "note in the database which sessions are live"}
	for {
		select {
		case <-h.stop:
			return
		case <-tick.C:
		}
		h.mu.Lock()
		var ids []string
		for id, l := range h.live {
			if l.host != nil {
				ids = append(ids, id)
			}
		}
		h.mu.Unlock()
		if err := h.cfg.Store.MarkAlive(context.Background(), ids, h.cfg.Now()); err != nil {
			marking.Failed(h.log, h.cfg.Now(), err)
		} else {
			marking.Worked(h.log, h.cfg.Now())
		}
	}
}

// A host sends a few messages a minute: its media offers, and the user's
// answers and changes. One that sends more is broken, or not a host:
// what it sends past hostMessageBurst, then hostMessageRate a second, is
// dropped (its end of the session never is), so that it cannot fill the
// audit trail, the recording and the ticket systems' webhooks, or have
// the relay build connection after connection.
const (
	hostMessageRate  = rate.Limit(2)
	hostMessageBurst = 30
)

// A technician's connection sends fewer still: its media answers, pings
// and requests for more permissions. Past viewerMessageBurst, then
// viewerMessageRate a second, what it sends is refused, so that it cannot
// flood the user with questions or the broker with answers to write.
const (
	viewerMessageRate  = rate.Limit(2)
	viewerMessageBurst = 30
)

// maxConnectionsPerPerson bounds one person's connections to a session (a
// console tab or two, viewer commands side by side), maxViewers everyone's.
const (
	maxConnectionsPerPerson = 8
	maxViewers              = 32
)

// expiredCodeReason is the end reason of a session whose code expired.
const expiredCodeReason = "The support code expired before the user joined."

// expireEvery is how often expireCodes looks for expired codes: a session
// ends (and its ticket system hears of it) within that of its code's expiry.
const expireEvery = time.Second

// codeAttemptsKept is how long audited code attempts are kept: the admin
// page shows a day of them, and a month is ample to look into a flood.
// Kept for ever, a flood of attempts would fill the disk.
const codeAttemptsKept = 30 * 24 * time.Hour

// forgetEvery is how often expireCodes deletes the code attempts older
// than codeAttemptsKept.
const forgetEvery = time.Hour

// expireCodes ends, at start and then every expireEvery until Close, the
// sessions whose code expired before the user joined: nobody can join
// them any more. At start that also ends those whose code expired while
// the broker was stopped. At start and then every forgetEvery, it deletes
// the code attempts older than codeAttemptsKept.
func (h *Hub) expireCodes() {
	defer h.wg.Done()
	tick := time.NewTicker(expireEvery)
	defer tick.Stop()
	expiring := joblog.Failing{What: "end the sessions whose support code expired"}
	var forgot time.Time
	for {
		h.endExpired(&expiring)
		h.writeUnrecordedEnds()
		h.storeRecordingSummaries()
		if now := h.cfg.Now(); now.Sub(forgot) >= forgetEvery {
			forgot = now
			if err := h.cfg.Store.DeleteCodeAttempts(context.Background(), now.Add(-codeAttemptsKept)); err != nil {
				h.log.Error("delete old code attempts", "err", err)
			}
		}
		select {
		case <-h.stop:
			return
		case <-tick.C:
		}
	}
}

// endExpired ends the sessions whose code expired unused, as of the
// expiry: that is when the session was over, whenever the broker noticed.
// While the store fails, f keeps the log to a line a minute.
func (h *Hub) endExpired(f *joblog.Failing) {
	ids, err := h.cfg.Store.EndExpiredCodes(context.Background(), EndedCodeExpired, expiredCodeReason, h.cfg.Now())
	if err != nil {
		f.Failed(h.log, h.cfg.Now(), err)
		return
	}
	f.Worked(h.log, h.cfg.Now())
	for _, id := range ids {
		h.mu.Lock()
		_, live := h.live[id]
		h.mu.Unlock()
		if live { // a technician waits on its page: tell them
			h.end(id, EndedCodeExpired, expiredCodeReason)
			continue
		}
		h.log.Info("session ended", "session", id, "reason", expiredCodeReason)
		h.audit(id, "broker", "session.ended", map[string]any{"reason": expiredCodeReason, "cause": EndedCodeExpired})
	}
}

// writeEnd writes that the session ended now, for reason. When the store
// refuses (its disk full), the end is kept to be written later: otherwise
// the session would read active until a restart, which would end it at its
// last sign of life for the wrong reason. An end still waiting to be
// written keeps its reason (the host's disconnect that follows is not why
// the session ended).
func (h *Hub) writeEnd(id, cause, reason string) {
	h.mu.Lock()
	unwritten := slices.ContainsFunc(h.unrecorded, func(e unrecordedEnd) bool { return e.id == id })
	h.mu.Unlock()
	if unwritten {
		return
	}
	at := h.cfg.Now()
	if err := h.cfg.Store.EndSession(context.Background(), id, cause, reason, at); err != nil {
		h.log.Error("record session end; it is written once the database takes it", "session", id, "err", err)
		h.mu.Lock()
		h.unrecorded = append(h.unrecorded, unrecordedEnd{id, cause, reason, at})
		h.mu.Unlock()
	}
}

// writeUnrecordedEnds writes the ends the store refused before, with their
// own reason and time, and their place in the trail, which was refused
// with them; the ticket system hears of them then.
func (h *Hub) writeUnrecordedEnds() {
	h.mu.Lock()
	ends := h.unrecorded
	h.unrecorded = nil
	h.mu.Unlock()
	for i, e := range ends {
		if err := h.cfg.Store.EndSession(context.Background(), e.id, e.cause, e.reason, e.at); err != nil {
			h.mu.Lock()
			h.unrecorded = append(h.unrecorded, ends[i:]...)
			h.mu.Unlock()
			return
		}
		h.log.Info("session end written", "session", e.id, "ended_at", e.at)
		if h.trailHasEnd(e.id) {
			continue
		}
		detail, _ := json.Marshal(map[string]any{"reason": e.reason, "cause": e.cause})
		if err := h.cfg.Store.AddEvent(context.Background(), &store.Event{Session: e.id, At: e.at, Actor: "broker", Type: "session.ended", Detail: string(detail)}); err != nil {
			h.log.Error("audit", "session", e.id, "type", "session.ended", "err", err)
		}
		h.notify(e.id, "broker", "session.ended", e.at, detail)
	}
}

// trailHasEnd reports whether the session's trail holds its end already
// (the store took that entry, though not the session's new state).
func (h *Hub) trailHasEnd(id string) bool {
	events, err := h.cfg.Store.Events(context.Background(), id)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(events, func(e *store.Event) bool { return e.Type == "session.ended" })
}

// hostLetGo bounds how long an end waits for the user's computer to let go
// of the session before it closes the technicians' connections.
const hostLetGo = 2 * time.Second

// end marks the session ended, tells everyone connected and closes their
// connections. The user's computer hears first, and the technicians'
// connections close once it has let go (or failed to within hostLetGo):
// closing a technician's channels first would stop a file on its way
// to or from the user as if the technician had left, and the user would
// read that instead of why the session ended.
func (h *Hub) end(id, cause, reason string) { h.endAs(id, "broker", cause, reason) }

// endAs is end on behalf of actor, whom the audit trail names.
func (h *Hub) endAs(id, actor, cause, reason string) {
	h.writeEnd(id, cause, reason)
	h.mu.Lock()
	l := h.live[id]
	if l == nil || l.ended {
		h.mu.Unlock()
		return
	}
	l.ended = true
	delete(h.live, id)
	if l.grace != nil {
		l.grace.Stop()
	}
	for _, r := range l.requests {
		r.timer.Stop()
	}
	viewers := l.viewerList()
	// A host that stopped answering will not let go: nothing waits for it.
	host, hostDone, answering := l.host, l.hostDone, l.hostSilentSince.IsZero()
	h.mu.Unlock()

	// Transfers under way stop first, so that the trail and the recording
	// hold them before the end.
	l.relay.End(reason)
	h.log.Info("session ended", "session", id, "reason", reason)
	h.audit(id, actor, "session.ended", map[string]any{"reason": reason, "cause": cause})
	h.finishRecording(id, reason)
	ended := protocol.Ended{Reason: reason, Scope: protocol.ScopeSession}
	if host != nil {
		if host.send(protocol.TypeEnded, id, ended) == nil && answering {
			t := time.NewTimer(hostLetGo)
			select {
			case <-hostDone:
			case <-t.C:
			}
			t.Stop()
		}
		host.close(closeEnded, "session ended")
	}
	for _, c := range viewers {
		c.send(protocol.TypeEnded, id, ended)
		c.close(closeEnded, "session ended")
	}
	l.relay.Close()
}

// hostSilent tells the session's viewers that its host stopped answering
// (silent) or answers again, so that they do not take the last picture
// for a live one. A host that stays silent is gone, and the relay ends
// the session.
func (h *Hub) hostSilent(id string, silent bool) {
	h.mu.Lock()
	l := h.live[id]
	if l == nil || l.ended || silent == !l.hostSilentSince.IsZero() {
		h.mu.Unlock()
		return
	}
	l.hostSilentSince = time.Time{}
	if silent {
		l.hostSilentSince = h.cfg.Now()
	}
	st := protocol.State{State: store.StateActive, Host: l.hostInfo, HostSilentSince: l.hostSilentSince}
	viewers := l.viewerList()
	h.mu.Unlock()
	if silent {
		h.log.Info("host not responding", "session", id)
	} else {
		h.log.Info("host responding again", "session", id)
	}
	for _, c := range viewers {
		c.send(protocol.TypeState, id, st)
	}
}

// errShuttingDown refuses a session that would start while the broker
// stops; its text is what the user reads, and why the session ended.
var errShuttingDown = errors.New("The support server is shutting down.")

// attach returns the live session id, creating it (and its relay and
// recording) on first use. Creation is serialized by attachMu, not h.mu:
// starting an archive touches the disk, and live sessions must not wait
// for that.
func (h *Hub) attach(sess *store.Session) (*live, error) {
	id := sess.ID
	h.attachMu.Lock()
	defer h.attachMu.Unlock()
	h.mu.Lock()
	closed, l := h.closed, h.live[id]
	h.mu.Unlock()
	if closed {
		return nil, errShuttingDown
	}
	if l != nil {
		return l, nil
	}
	var r *relay.Session
	rec, err := h.startRecording(sess, func() { r.RequestKeyframe() }, func() int { return r.ViewerBitrate() })
	if err != nil {
		return nil, err
	}
	cfg := relay.Config{
		API:          h.cfg.API,
		Logger:       h.cfg.Logger.With("component", "relay", "session", id),
		OnHostGone:   func() { go h.end(id, EndedHostLost, "The user's computer disconnected.") },
		OnHostSilent: func(silent bool) { h.hostSilent(id, silent) },
		Traffic:      &h.traffic,
	}
	if rec != nil {
		cfg.Tap, cfg.ShellTap = rec, rec
	}
	if r, err = relay.New(cfg); err != nil {
		if rec != nil {
			h.finishRecording(id, "The relay could not start: "+err.Error())
		}
		return nil, err
	}
	l = &live{id: id, codeHash: sess.CodeHash, ticket: sess.TicketID, perms: sess.Permissions, relay: r, viewers: map[*conn]*viewer{}, requests: map[string]*request{}}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		r.Close()
		h.finishRecording(id, "The support server is shutting down.")
		return nil, errShuttingDown
	}
	h.live[id] = l
	h.mu.Unlock()
	return l, nil
}

// sameOrigin reports whether a browser's Origin header names this broker.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	u, err := url.Parse(origin)
	return err == nil && u.Scheme == "https" && strings.EqualFold(u.Host, r.Host)
}

// ServeHost handles a host's WebSocket: hello with the code, then SDP.
func (h *Hub) ServeHost(w http.ResponseWriter, r *http.Request) {
	// Hosts are programs, not pages: a browser page may not pose as one.
	if r.Header.Get("Origin") != "" && !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	c, hello, ok := h.accept(w, r, protocol.RoleHost)
	if !ok {
		return
	}
	defer h.release(c)
	// A host comes with a code, or asks for one and waits for a
	// technician to claim it.
	next := c.read
	joined := func() {} // tells a technician's claim that the host is in
	var sess *store.Session
	if hello.NewCode {
		sess, next, joined, ok = h.issueCode(c, r)
	} else {
		sess, ok = h.redeem(c, r, hello.Code)
	}
	if !ok {
		return
	}
	defer joined() // also when the host cannot join

	l, err := h.attach(sess)
	if err != nil {
		// The code is spent: nobody can join the session any more, and it
		// would wait for ever (only sessions with unused codes expire).
		cause := EndedRecordingFailed
		if errors.Is(err, errShuttingDown) {
			cause = EndedShutdown
		}
		h.finish(sess.ID, "broker", cause, err.Error())
		h.refuse(c, protocol.CodeInternal, err.Error())
		return
	}
	info := hello.Host
	if info == nil {
		info = &protocol.HostInfo{}
	}
	infoJSON, _ := json.Marshal(info)
	if err := h.cfg.Store.SetSessionActive(r.Context(), sess.ID, string(infoJSON)); err != nil {
		h.log.Error("record host joined", "session", sess.ID, "err", err)
	}
	// The welcome goes first: consent requests follow at once.
	c.send(protocol.TypeWelcome, sess.ID, protocol.Welcome{Session: sess.ID, State: store.StateActive})
	h.mu.Lock()
	if l.ended {
		h.mu.Unlock()
		h.refuse(c, protocol.CodeSessionEnded, "The session has ended.")
		return
	}
	done := make(chan struct{})
	l.host, l.hostInfo, l.hostDone = c, info, done
	viewers := l.viewerList()
	for _, v := range l.viewers {
		if !v.asked {
			h.askLocked(l, v, permsFor(l, v), true, nil)
		}
	}
	h.mu.Unlock()
	h.audit(sess.ID, "user", "host.connected", map[string]any{"hostname": info.Hostname, "os": info.OS, "remote": r.RemoteAddr})
	h.log.Info("host joined", "session", sess.ID, "remote", r.RemoteAddr, "display", fmt.Sprintf("%dx%d", info.Width, info.Height), "capture", info.Capture)
	joined()

	for _, v := range viewers {
		v.send(protocol.TypeState, sess.ID, protocol.State{State: store.StateActive, Host: info})
	}

	limit := rate.NewLimiter(hostMessageRate, hostMessageBurst)
	dropped := 0
	for {
		env, err := next()
		if err != nil {
			if readErrorIsFatal(err) {
				break
			}
			c.reportReadError(sess.ID, err)
			continue
		}
		if env.Type != protocol.TypeEnd && !limit.Allow() {
			if dropped++; dropped == 1 {
				h.log.Warn("the user's computer sends too many messages; those past the limit are dropped", "session", sess.ID, "remote", r.RemoteAddr)
			}
			c.sendError(sess.ID, protocol.CodeRateLimited, "Too many messages: this one was dropped. Wait a moment.")
			continue
		}
		switch env.Type {
		case protocol.TypeOffer:
			var offer protocol.SDP
			if err := protocol.DecodePayload(env, &offer); err != nil {
				c.reportReadError(sess.ID, err)
				continue
			}
			answer, err := l.relay.AcceptHost(offer.SDP)
			if err != nil {
				h.log.Warn("host negotiation failed", "session", sess.ID, "err", err)
				c.sendError(sess.ID, protocol.CodeNegotiation, "The broker could not accept the media offer.")
				continue
			}
			c.send(protocol.TypeAnswer, sess.ID, protocol.SDP{SDP: answer})
		case protocol.TypeConsentAnswer:
			var a protocol.ConsentAnswer
			if err := protocol.DecodePayload(env, &a); err != nil {
				c.reportReadError(sess.ID, err)
				continue
			}
			h.answer(l, a, "user")
		case protocol.TypeConsentState:
			var st protocol.ConsentState
			if err := protocol.DecodePayload(env, &st); err != nil {
				c.reportReadError(sess.ID, err)
				continue
			}
			h.applyState(l, st)
		case protocol.TypeEnd:
			var end protocol.End
			protocol.DecodePayload(env, &end)
			cause, reason := EndedByUser, "The user ended the session."
			if end.Reason == protocol.EndDisplayGone {
				cause, reason = EndedDisplayGone, "The user's desktop closed (the display went away)."
			}
			close(done) // it stopped its transfers before it said so
			h.end(sess.ID, cause, reason)
			return
		default:
			// Unknown types are skipped: a newer host may send more.
		}
	}
	close(done)
	h.end(sess.ID, EndedHostLost, "The user's computer disconnected.")
}

// accept upgrades to WebSocket, keeps the connection alive and reads the
// peer's hello. When ok, the caller owns c and must release it.
func (h *Hub) accept(w http.ResponseWriter, r *http.Request, role string) (c *conn, hello protocol.Hello, ok bool) {
	// Counted under mu, as Close sets closed before it waits: a connection
	// that comes once Close waits is turned away, not added to the wait.
	h.mu.Lock()
	closed := h.closed
	if !closed {
		h.wg.Add(3)
	}
	h.mu.Unlock()
	if closed {
		http.Error(w, "the broker is shutting down; try again in a moment", http.StatusServiceUnavailable)
		return nil, hello, false
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		h.wg.Add(-3)
		return nil, hello, false
	}
	nc := newConn(ws)
	// The goroutines have their own copy: a refused hello returns a nil c,
	// maybe before they have started.
	go func() {
		defer h.wg.Done()
		nc.keepalive()
	}()
	// A peer yet to say hello when the broker stops is let go at once,
	// not when its hello times out: Close waits for it.
	helloDone := make(chan struct{})
	go func() {
		defer h.wg.Done()
		select {
		case <-h.stop:
			nc.close(closeShutdown, "the broker is shutting down")
		case <-helloDone:
		}
	}()
	ws.SetReadDeadline(time.Now().Add(helloTimeout))
	ok = h.readHello(nc, &hello, role)
	close(helloDone)
	if !ok {
		h.release(nc)
		return nil, hello, false
	}
	ws.SetReadDeadline(time.Now().Add(pongTimeout))
	return nc, hello, true
}

// release closes a connection from accept.
func (h *Hub) release(c *conn) {
	c.close(closeEnded, "")
	h.wg.Done()
}

// readHello reads and checks the first message; on failure it tells the
// peer why and closes.
func (h *Hub) readHello(c *conn, hello *protocol.Hello, role string) bool {
	env, err := c.read()
	switch {
	case errors.Is(err, protocol.ErrVersion):
		h.refuseVersion(c, role, env.V, env.V)
		return false
	case err != nil && readErrorIsFatal(err):
		c.close(closeRefused, "no hello")
		return false
	case errors.Is(err, errTooLarge):
		h.refuse(c, protocol.CodeTooLarge, "The first message must be a valid hello: "+err.Error())
		return false
	case err != nil:
		h.refuse(c, protocol.CodeBadMessage, "The first message must be a valid hello: "+err.Error())
		return false
	}
	if env.Type != protocol.TypeHello {
		h.refuse(c, protocol.CodeUnexpectedType, "The first message must be a hello.")
		return false
	}
	if err := protocol.DecodePayload(env, hello); err != nil {
		if errors.Is(err, protocol.ErrVersion) {
			h.refuseVersion(c, role, env.V, hello.Version)
			return false
		}
		h.refuse(c, protocol.CodeBadMessage, "Hello refused: "+err.Error())
		return false
	}
	if hello.Role != role {
		h.refuse(c, protocol.CodeForbidden, "This endpoint is for the "+role+" role.")
		return false
	}
	return true
}

func (h *Hub) refuse(c *conn, code, message string) {
	c.sendError("", code, message)
	c.close(closeRefused, code)
}

// refuseVersion refuses a peer that speaks protocol version peer, in an
// envelope of version v, the one it sent: its own decoder refuses any
// other, and its user would read a decoding error instead of what to do.
func (h *Hub) refuseVersion(c *conn, role string, v, peer int) {
	h.log.Info("peer refused: other protocol version", "role", role, "version", peer)
	if data, err := protocol.EncodeError(v, "", protocol.ErrorPayload{Code: protocol.CodeVersion, Message: versionAdvice(role, peer)}); err == nil {
		c.write(data)
	}
	c.close(closeRefused, protocol.CodeVersion)
}

// versionAdvice tells the user of a host or viewer of another protocol
// version what to do.
func versionAdvice(role string, peer int) string {
	switch {
	case role == protocol.RoleHost && peer < protocol.Version:
		return "This Tether host is older than the support server and cannot connect to it. Download the current host from your support link, or ask your technician for it."
	case role == protocol.RoleHost:
		return "This Tether host is newer than the support server and cannot connect to it. Ask your technician for the host that goes with their support server."
	case peer < protocol.Version:
		return "This console or viewer is older than the support server. Reload the console page, or install the viewer that goes with the server."
	default:
		return "This viewer is newer than the support server. Use the viewer that goes with the server, or ask your administrator to update the server."
	}
}

func (l *live) viewerList() []*conn {
	out := make([]*conn, 0, len(l.viewers))
	for c := range l.viewers {
		out = append(out, c)
	}
	return out
}

// ServeViewer handles a technician's WebSocket: authenticated by login
// cookie (same-origin browsers) or bearer token (the CLI).
func (h *Hub) ServeViewer(w http.ResponseWriter, r *http.Request) {
	// A page on another site is refused before its cookie is looked at:
	// looking counts as a use of the login, and would keep it from going
	// idle for as long as the page tries.
	if r.Header.Get("Origin") != "" && !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	authenticated := time.Now()
	p, err := h.cfg.Auth.Authenticate(r)
	if errors.Is(err, auth.ErrUnavailable) {
		http.Error(w, "the broker has a problem and cannot check logins right now; try again later", http.StatusServiceUnavailable)
		return
	}
	if errors.Is(err, auth.ErrKeyExpired) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "this API key has expired: an administrator can create a new one", http.StatusUnauthorized)
		return
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", "Bearer")
		http.Error(w, "log in again or check the API key", http.StatusUnauthorized)
		return
	}
	if !p.Can(auth.ScopeSessionsJoin) || p.MustEnrol {
		http.Error(w, "this login or API key may not join sessions", http.StatusForbidden)
		return
	}
	// A cookie rides along with any page's request: only our own pages may
	// use it. Bearer clients are programs and send no Origin.
	if p.Cookie && !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	c, hello, ok := h.accept(w, r, protocol.RoleViewer)
	if !ok {
		return
	}
	defer h.release(c)
	sess, err := h.cfg.Store.SessionByID(r.Context(), hello.Session)
	if err != nil || !h.CanAccess(r.Context(), p.User, sess) {
		// The same answer for missing and forbidden: ids are not probed.
		h.refuse(c, protocol.CodeNotFound, "No such session, or it is not yours.")
		return
	}
	if sess.State == store.StateEnded {
		h.refuse(c, protocol.CodeSessionEnded, "That session has ended.")
		return
	}
	l, err := h.attach(sess)
	if err != nil {
		h.refuse(c, protocol.CodeInternal, err.Error())
		return
	}
	// The welcome goes out before the viewer is registered, so that nothing
	// broadcast to viewers can overtake it; the state that follows
	// registration is the current one.
	h.mu.Lock()
	state := store.StateWaiting
	if l.host != nil {
		state = store.StateActive
	}
	h.mu.Unlock()
	c.send(protocol.TypeWelcome, sess.ID, protocol.Welcome{Session: sess.ID, State: state})
	h.mu.Lock()
	if l.ended {
		h.mu.Unlock()
		h.refuse(c, protocol.CodeSessionEnded, "That session has ended.")
		return
	}
	v := &viewer{conn: c, person: protocol.Person{ID: "v_" + auth.RandomToken(9), Name: p.User.Username, Role: p.User.Role, Org: h.cfg.Organisation},
		session: sess.ID, userID: p.User.ID, keyID: p.KeyID}
	if p.Login != nil {
		v.login = p.Login.TokenHash
	}
	// Each connection is a question to the user and a peer connection on
	// the broker: one person (or script) cannot queue the user dozens of
	// questions, nor a session take the broker's memory.
	mine := 0
	for _, o := range l.viewers {
		if o.userID == v.userID {
			mine++
		}
	}
	if mine >= maxConnectionsPerPerson || len(l.viewers) >= maxViewers {
		h.mu.Unlock()
		msg := fmt.Sprintf("You have %d connections to this session already: close one (a console tab, a viewer command) and try again.", mine)
		if mine < maxConnectionsPerPerson {
			msg = fmt.Sprintf("This session has %d connections already, the most it takes.", len(l.viewers))
		}
		h.refuse(c, protocol.CodeRateLimited, msg)
		return
	}
	// A sign-out (or a revoked key...) between the authentication and now
	// found no connection to cut off: this is it.
	for _, cut := range h.cuts {
		if !cut.at.Before(authenticated) && cut.match(v) {
			h.mu.Unlock()
			h.cutOff(sess.ID, v, cut.reason)
			return
		}
	}
	l.viewers[c] = v
	if l.grace != nil && v.person.Role != auth.RoleSupervisor {
		l.grace.Stop()
		l.grace = nil
	}
	info, silentSince := l.hostInfo, l.hostSilentSince
	if l.host != nil {
		state = store.StateActive
	}
	h.mu.Unlock()
	h.log.Info("viewer joined", "session", sess.ID, "user", p.User.Username)
	h.audit(sess.ID, p.User.Username, "viewer.joined", map[string]any{"role": p.User.Role})
	defer h.leave(l, c)
	// A console login lasts LoginTTL at most, and so do the connections
	// made with it: at its end they are cut off, as at a sign-out.
	if login := p.Login; login != nil {
		expiry := time.AfterFunc(login.ExpiresAt.Sub(h.cfg.Now()), func() {
			h.DisconnectLogin(login.TokenHash, "Your sign-in has expired: sign in again to go on.")
		})
		defer expiry.Stop()
	}
	// So do those made with an API key that has a last day.
	if p.KeyID != "" && !p.KeyExpiresAt.IsZero() {
		keyID := p.KeyID
		expiry := time.AfterFunc(p.KeyExpiresAt.Sub(h.cfg.Now()), func() {
			h.DisconnectKey(keyID, "The API key you connected with has expired.")
		})
		defer expiry.Stop()
	}

	if info != nil {
		c.send(protocol.TypeState, sess.ID, protocol.State{State: state, Host: info, HostSilentSince: silentSince})
	}
	// Supervisors watch; the people who work the ticket may take control.
	media, offer, err := l.relay.AddViewer(relay.ViewerOptions{
		CanControl: p.User.Role != auth.RoleSupervisor,
		Name:       p.User.Username,
		ID:         v.person.ID,
		OnAudit: func(typ string, detail map[string]any) {
			h.audit(sess.ID, p.User.Username, typ, detail)
		},
		OnRefused: func(reason string, count uint64) {
			h.log.Warn("viewer message refused", "session", sess.ID, "user", p.User.Username, "reason", reason, "count", count)
			h.audit(sess.ID, p.User.Username, "message.refused", map[string]any{"reason": reason, "count": count})
		},
	})
	if err != nil {
		h.log.Warn("viewer media", "session", sess.ID, "err", err)
		c.sendError(sess.ID, protocol.CodeNegotiation, "The broker could not set up video for you.")
		return
	}
	defer media.Close()
	h.mu.Lock()
	v.media = media
	// The user may have answered already: a host that joined while this
	// media was set up asked for this viewer then.
	media.SetGrants(v.grants, l.paused)
	if l.host != nil && !v.asked {
		h.askLocked(l, v, permsFor(l, v), true, nil)
	}
	h.mu.Unlock()
	c.send(protocol.TypeOffer, sess.ID, protocol.SDP{SDP: offer})

	limit := rate.NewLimiter(viewerMessageRate, viewerMessageBurst)
	for {
		env, err := c.read()
		if err != nil {
			if readErrorIsFatal(err) {
				return
			}
			c.reportReadError(sess.ID, err)
			continue
		}
		// Its end always goes through; anything past the limit is refused,
		// the answer written before the next message is read.
		if env.Type != protocol.TypeEnd && !limit.Allow() {
			c.sendError(sess.ID, protocol.CodeRateLimited, "Too many messages: this one was dropped. Wait a moment.")
			continue
		}
		switch env.Type {
		case protocol.TypeAnswer:
			var answer protocol.SDP
			if err := protocol.DecodePayload(env, &answer); err != nil {
				c.reportReadError(sess.ID, err)
				continue
			}
			if err := media.SetAnswer(answer.SDP); err != nil {
				c.sendError(sess.ID, protocol.CodeNegotiation, "The broker could not accept your answer.")
			}
		case protocol.TypePermissionRequest:
			var req protocol.PermissionRequest
			if err := protocol.DecodePayload(env, &req); err != nil {
				c.reportReadError(sess.ID, err)
				continue
			}
			if code, refusal := h.requestMore(l, c, req.Permissions); refusal != "" {
				c.sendError(sess.ID, code, refusal)
			}
		case protocol.TypePing:
			c.send(protocol.TypePong, sess.ID, nil)
		case protocol.TypeEnd:
			if !p.Can(auth.ScopeSessionsWrite) {
				c.sendError(sess.ID, protocol.CodeForbidden, "You may watch this session but not end it.")
				continue
			}
			var end protocol.End
			if err := protocol.DecodePayload(env, &end); err != nil {
				end.Reason = ""
			}
			cause, reason := endedBy(p.User, sess)
			if end.Reason != "" {
				reason = strings.TrimSuffix(reason, ".") + ": " + end.Reason
			}
			h.end(sess.ID, cause, reason)
			return
		default:
		}
	}
}

// leave removes a viewer; the last one to go starts the grace timer.
func (h *Hub) leave(l *live, c *conn) {
	c.close(closeEnded, "")
	h.mu.Lock()
	defer h.mu.Unlock()
	if v := l.viewers[c]; v != nil && l.host != nil && !l.ended {
		// Its questions go with it: the host withdraws them, and a late
		// answer is not taken for anyone.
		for id, r := range l.requests {
			if r.viewer == v {
				r.timer.Stop()
				delete(l.requests, id)
			}
		}
		if v.goneFor != l.host {
			go l.host.send(protocol.TypeViewerLeft, l.id, protocol.ViewerLeft{Viewer: v.person.ID, CutOff: v.cutOff})
		}
		if !v.cutOff {
			now := time.Now()
			l.departed = slices.DeleteFunc(l.departed, func(d departure) bool { return now.Sub(d.at) > protocol.ReturnWithin })
			l.departed = append(l.departed, departure{v, now})
		}
	}
	wasObserver := l.viewers[c] != nil && slices.Contains(l.observersLocked(), l.viewers[c].person)
	delete(l.viewers, c)
	if wasObserver {
		go h.announceObservers(l)
	}
	// A session the user has not joined yet waits for them, whoever looked
	// at it meanwhile: their code is good until it expires. A supervisor
	// watching does not keep it: they cannot work it, nor end it.
	if l.workingLocked() > 0 || l.grace != nil || l.ended || h.closed || l.host == nil {
		return
	}
	l.grace = time.AfterFunc(h.cfg.ViewerGrace, func() {
		h.mu.Lock()
		abandoned := l.workingLocked() == 0 && !l.ended
		h.mu.Unlock()
		if abandoned {
			h.end(l.id, EndedAbandoned, "The technician left the session.")
		}
	})
}

// workingLocked counts the connections of those who can work the
// session: everyone but supervisors watching. h.mu is held.
func (l *live) workingLocked() int {
	n := 0
	for _, v := range l.viewers {
		if v.person.Role != auth.RoleSupervisor {
			n++
		}
	}
	return n
}

// EndWaitingOf ends, on behalf of the admin by, the sessions of the
// account userID still waiting for their user, with no colleague invited
// in: by disabled the account, and nobody could come when the user joined
// with the code.
func (h *Hub) EndWaitingOf(ctx context.Context, by *store.User, userID int64) error {
	ids, err := h.cfg.Store.WaitingSessionsOf(ctx, userID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		h.finish(id, by.Username, EndedByAdmin, "The technician is no longer available: ask for a new code.")
	}
	return nil
}

// DisconnectUser closes every live connection of the account userID, as
// when an admin disables it, changes its role or resets it: whatever the
// user allowed those connections ends with them, and a new connection is
// authenticated and put to the user afresh. reason is what they are told.
func (h *Hub) DisconnectUser(userID int64, reason string) {
	h.disconnect(func(v *viewer) bool { return v.userID == userID }, reason)
}

// DisconnectKey closes every live connection made with the API key keyID,
// which was revoked.
func (h *Hub) DisconnectKey(keyID, reason string) {
	h.disconnect(func(v *viewer) bool { return v.keyID == keyID }, reason)
}

// DisconnectLogin closes every live connection made with the console
// login tokenHash, which ended (its user signed out).
func (h *Hub) DisconnectLogin(tokenHash, reason string) {
	h.disconnect(func(v *viewer) bool { return v.login != "" && v.login == tokenHash }, reason)
}

// DisconnectOtherLogins closes the live connections of the account userID
// made with any of its console logins but keep, as when the user changed
// the password and the other logins ended. Connections made with API keys
// stay: a password change does not revoke keys.
func (h *Hub) DisconnectOtherLogins(userID int64, keep, reason string) {
	h.disconnect(func(v *viewer) bool { return v.userID == userID && v.login != "" && v.login != keep }, reason)
}

// DisconnectLoginsOf closes the live connections made with any console
// login of the accounts userIDs, as when their role came to require
// two-factor authentication they have not set up: such a login may only
// enrol. Connections made with API keys stay.
func (h *Hub) DisconnectLoginsOf(userIDs []int64, reason string) {
	h.disconnect(func(v *viewer) bool { return v.login != "" && slices.Contains(userIDs, v.userID) }, reason)
}

func (h *Hub) disconnect(match func(*viewer) bool, reason string) {
	type cut struct {
		session string
		v       *viewer
		media   *relay.Viewer
	}
	var cuts []cut
	// The user's computer keeps what it allowed the connections that left
	// a moment ago, for their return: it forgets it now.
	type forget struct {
		host            *conn
		session, viewer string
	}
	var forgets []forget
	h.mu.Lock()
	now := time.Now()
	h.cuts = slices.DeleteFunc(h.cuts, func(c recentCut) bool { return now.Sub(c.at) > cutMemory })
	h.cuts = append(h.cuts, recentCut{at: now, match: match, reason: reason})
	for _, l := range h.live {
		l.departed = slices.DeleteFunc(l.departed, func(d departure) bool {
			if !match(d.v) || now.Sub(d.at) > protocol.ReturnWithin {
				return false
			}
			if l.host != nil && !l.ended {
				forgets = append(forgets, forget{l.host, l.id, d.v.person.ID})
			}
			return true
		})
		for _, v := range l.viewers {
			// One cut off a moment ago may still be on the list while its
			// connection winds down: it is not cut off twice.
			if !v.cutOff && match(v) {
				v.cutOff = true
				cuts = append(cuts, cut{l.id, v, v.media})
			}
		}
	}
	h.mu.Unlock()
	for _, f := range forgets {
		f.host.send(protocol.TypeViewerLeft, f.session, protocol.ViewerLeft{Viewer: f.viewer, CutOff: true})
	}
	for _, c := range cuts {
		if c.media != nil {
			c.media.CutOff(reason)
		}
		h.cutOff(c.session, c.v, reason)
	}
}

// cutOff ends v's connection to the session, which goes on for the others.
func (h *Hub) cutOff(session string, v *viewer, reason string) {
	h.log.Info("viewer disconnected", "session", session, "user", v.person.Name, "reason", reason)
	h.audit(session, "broker", "viewer.disconnected", map[string]any{"user": v.person.Name, "reason": reason})
	// The user's computer hears first, before the connection is told and
	// closed: a connection the technician opens next must not find this
	// one still there, and be let in with what the user allowed it.
	h.mu.Lock()
	var host *conn
	if l := h.live[session]; l != nil && l.viewers[v.conn] == v && !l.ended {
		host, v.goneFor = l.host, l.host
	}
	h.mu.Unlock()
	if host != nil {
		host.send(protocol.TypeViewerLeft, session, protocol.ViewerLeft{Viewer: v.person.ID, CutOff: true})
	}
	v.conn.send(protocol.TypeEnded, session, protocol.Ended{Reason: reason, Scope: protocol.ScopeConnection})
	v.conn.close(closeEnded, "")
}

// Close ends every live session and waits for their connections.
func (h *Hub) Close() error {
	h.mu.Lock()
	if !h.closed {
		close(h.stop)
	}
	h.closed = true
	ids := make([]string, 0, len(h.live))
	for id := range h.live {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	// At once: each end waits a moment for its host to let go.
	var ending sync.WaitGroup
	for _, id := range ids {
		ending.Go(func() { h.end(id, EndedShutdown, "The support server is shutting down.") })
	}
	ending.Wait()
	h.wg.Wait()
	return nil
}
