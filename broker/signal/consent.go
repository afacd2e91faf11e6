package signal

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/relay"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/internal/protocol"
)

// consentGrace is how much longer than the user's answer time the broker
// waits before it takes silence from the host as a denial.
const consentGrace = 5 * time.Second

// viewer is one technician in a live session.
type viewer struct {
	conn    *conn
	person  protocol.Person
	session string        // the session it joined
	userID  int64         // the account it signed in as
	keyID   string        // the API key it signed in with, if any
	login   string        // the hash of the console login it signed in with, if any
	cutOff  bool          // its access was withdrawn: the host keeps nothing for its return
	goneFor *conn         // the host told this viewer is gone (as it was cut off)
	media   *relay.Viewer // nil until the viewer's media is set up
	grants  []string      // what the user allowed this viewer
	asked   bool          // the user has been asked to let this viewer in
	pending string        // id of the request the user is answering, if any
}

// request is a question put to the user.
type request struct {
	viewer *viewer
	perms  []string
	first  bool // asking to let the viewer in, not for more
	timer  *time.Timer
}

// audit records an event in the session's trail, and in its recording at
// the same time: as it happened, not when the database had written it.
func (h *Hub) audit(session, actor, typ string, detail map[string]any) {
	at := h.cfg.Now()
	data, _ := json.Marshal(detail)
	if detail == nil {
		data = []byte("{}")
	}
	err := h.cfg.Store.AddEvent(context.Background(), &store.Event{Session: session, At: at, Actor: actor, Type: typ, Detail: string(data)})
	if err != nil {
		h.log.Error("audit", "session", session, "type", typ, "err", err)
	}
	h.counts.count(typ, detail)
	h.recordEvent(session, at, actor, typ, data)
	h.notify(session, actor, typ, at, data)
}

// askLocked puts a consent request for v to the host. h.mu is held.
// asked is what the viewer asked for, when the question is its own
// request: it goes in the trail before the question, and only when the
// question is put.
func (h *Hub) askLocked(l *live, v *viewer, perms []string, first bool, asked []string) {
	if l.host == nil || v.pending != "" || len(perms) == 0 {
		return
	}
	id := "c_" + auth.RandomToken(9)
	req := &request{viewer: v, perms: perms, first: first}
	v.pending, v.asked = id, true
	l.requests[id] = req
	timeout := h.cfg.ConsentTimeout
	req.timer = time.AfterFunc(timeout+consentGrace, func() {
		h.answer(l, protocol.ConsentAnswer{ID: id, Reason: "timeout"}, "broker")
	})
	msg := protocol.ConsentRequest{ID: id, Viewer: v.person, Ticket: l.ticket, Permissions: perms, More: !first, TimeoutSeconds: int(timeout / time.Second)}
	waiting := protocol.Permissions{Granted: slices.Clone(v.grants), Paused: l.paused, Pending: true, Message: "Waiting for the user to answer."}
	host := l.host
	// The trail and the messages go out off the lock: h.mu is held here.
	// The viewer hears that the question is out before the host gets it:
	// a user who answers at once must not have the answer overtaken by it.
	go func() {
		if asked != nil {
			h.audit(l.id, v.person.Name, "permission.requested", map[string]any{"permissions": asked})
		}
		h.audit(l.id, v.person.Name, "consent.requested", map[string]any{"permissions": perms, "viewer": v.person.Name})
		v.conn.send(protocol.TypePermissions, l.id, waiting)
		host.send(protocol.TypeConsentRequest, l.id, msg)
	}()
}

// answer applies the user's answer to a request.
func (h *Hub) answer(l *live, a protocol.ConsentAnswer, actor string) {
	h.mu.Lock()
	req := l.requests[a.ID]
	if req == nil || l.ended {
		h.mu.Unlock()
		return
	}
	delete(l.requests, a.ID)
	req.timer.Stop()
	// The user's computer puts one question at a time, each with the whole
	// timeout from when it shows: the next one shows now, and the others
	// wait their turn, as long again.
	for _, other := range l.requests {
		other.timer.Reset(h.cfg.ConsentTimeout + consentGrace)
	}
	v := req.viewer
	v.pending = ""
	// The user can grant only what was asked.
	var granted []string
	for _, p := range a.Granted {
		if slices.Contains(req.perms, p) {
			granted = append(granted, p)
		}
	}
	for _, p := range granted {
		if !slices.Contains(v.grants, p) {
			v.grants = append(v.grants, p)
		}
	}
	// The grants have grown since the host's last state: the next one is
	// taken whatever it says, even the last one again (control allowed,
	// then taken back).
	l.state = nil
	declinesSession := !l.allowed
	if len(granted) > 0 {
		l.allowed = true
	}
	// Others still here, allowed or still to be asked or answered: a "no"
	// to one (an observer asked first) does not end the session for them.
	others := 0
	for _, o := range l.viewers {
		if o != v && (len(o.grants) > 0 || o.pending != "" || !o.asked) {
			others++
		}
	}
	h.mu.Unlock()

	reason := a.Reason
	switch {
	case len(granted) > 0:
		reason = "granted"
	case reason == "not_shown":
		actor = "broker" // the user's computer could not ask: no decision of the user's
	case reason != "timeout":
		reason = "denied"
	}
	detail := map[string]any{"viewer": v.person.Name, "requested": req.perms, "granted": granted}
	if len(granted) > 0 && a.Reason == "remembered" {
		detail["remembered"] = true // kept from before they left a moment ago; no question was put
	}
	h.audit(l.id, actor, "consent."+reason, detail)
	h.log.Info("consent answered", "session", l.id, "viewer", v.person.Name, "answer", reason, "granted", strings.Join(granted, ","))

	msg := consentMessage(reason, req.perms, granted)
	h.tellGrants(l, v, msg)
	// Everyone learns who watches; the newcomer learns it too.
	h.announceObservers(l)
	if req.first && len(granted) == 0 {
		if others == 0 && declinesSession {
			// The user said no, or did not answer; a question their
			// computer could not put was no decision of theirs.
			cause := EndedDeclined
			if reason == "not_shown" {
				cause = EndedNotAsked
			}
			h.end(l.id, cause, msg)
			return
		}
		v.conn.close(closeRefused, "the user declined")
	}
}

// sameWill reports whether two consent states say the same: the same
// pause, and the same grants to the same viewers, in the same order.
func sameWill(a, b protocol.ConsentState) bool {
	return a.Paused == b.Paused && slices.EqualFunc(a.Grants, b.Grants, func(x, y protocol.Grant) bool {
		return x.Viewer == y.Viewer && slices.Equal(x.Granted, y.Granted)
	})
}

func consentMessage(reason string, asked, granted []string) string {
	switch {
	case reason == "timeout":
		return "The user did not answer in time."
	case reason == "not_shown":
		return "The question could not be shown to the user."
	case len(granted) == 0:
		return "The user declined."
	case len(granted) < len(asked):
		return "The user allowed " + protocol.PermWords(granted...) + " only."
	default:
		return "The user allowed " + protocol.PermWords(granted...) + "."
	}
}

// applyState takes the user's current will from the host: grants can only
// shrink here (more needs a new question), and the session may be paused.
// The same state again (a host back after a reconnection repeats it, a
// broken one may repeat it without end) changes nothing and is not
// recorded.
func (h *Hub) applyState(l *live, st protocol.ConsentState) {
	h.mu.Lock()
	if l.ended || l.state != nil && sameWill(*l.state, st) {
		h.mu.Unlock()
		return
	}
	l.state = &st
	wasPaused := l.paused
	l.paused = st.Paused
	var updated []*viewer
	for _, v := range l.viewers {
		var allowed []string
		for _, g := range st.Grants {
			if g.Viewer == v.person.ID {
				allowed = g.Granted
			}
		}
		var kept []string
		for _, p := range v.grants {
			if slices.Contains(allowed, p) {
				kept = append(kept, p)
			}
		}
		v.grants = kept
		updated = append(updated, v)
	}
	paused := l.paused
	h.mu.Unlock()

	change := st.Change
	if change == "" && paused != wasPaused {
		change = map[bool]string{true: "paused", false: "resumed"}[paused]
	}
	h.audit(l.id, "user", "consent.changed", map[string]any{"change": change, "paused": paused, "grants": st.Grants})
	h.log.Info("user changed consent", "session", l.id, "change", change, "paused", paused)
	msg := "The user " + change + "."
	if change == "" {
		msg = ""
	}
	for _, v := range updated {
		h.tellGrants(l, v, msg)
	}
	h.announceObservers(l)
}

// tellGrants gives the viewer's relay, and the viewer, what the user
// allows it now, with msg. Each call reads the state when it runs, and
// calls take turns: an answer and a revoke or pause that race cannot
// leave the older state in force after the newer one.
func (h *Hub) tellGrants(l *live, v *viewer, msg string) {
	l.grantsMu.Lock()
	defer l.grantsMu.Unlock()
	h.mu.Lock()
	grants, paused, media := slices.Clone(v.grants), l.paused, v.media
	h.mu.Unlock()
	if media != nil {
		media.SetGrants(grants, paused)
	}
	v.conn.send(protocol.TypePermissions, l.id, protocol.Permissions{Granted: grants, Paused: paused, Message: msg})
}

// requestMore asks the user for permissions a viewer does not have yet.
func (h *Hub) requestMore(l *live, c *conn, perms []string) (code, refusal string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := l.viewers[c]
	if v == nil {
		return "", ""
	}
	var extra []string
	watchOnly := false
	for _, p := range perms {
		if v.person.Role == auth.RoleSupervisor && p != protocol.PermView {
			watchOnly = true // observers only watch
			continue
		}
		if !slices.Contains(v.grants, p) {
			extra = append(extra, p)
		}
	}
	switch {
	case len(extra) == 0 && watchOnly:
		return protocol.CodeForbidden, "Supervisors watch sessions read-only: they can be allowed to see, nothing more."
	case len(extra) == 0:
		return protocol.CodeBadMessage, "You already have those permissions."
	case v.pending != "":
		return protocol.CodeBadMessage, "The user is still answering an earlier request."
	case l.host == nil:
		return protocol.CodeBadMessage, "The user's computer is not connected."
	}
	h.askLocked(l, v, extra, !v.asked, perms)
	return "", ""
}
