package signal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/internal/limit"
	"github.com/tether-support/tether/internal/protocol"
)

// Errors about codes, for the API to map to answers.
var (
	// ErrCodeUnknown: no host waits with that code. A code issued for a
	// technician's session gives the same answer: a code lets a host in,
	// never a technician.
	ErrCodeUnknown = errors.New("no computer is waiting with that code")
)

// RateLimitError says that too many codes were tried, and when to retry.
type RateLimitError struct {
	RetryAfter time.Duration
	// Everyone is true when the limit on all sources together was
	// reached, not the source's own: it had tried nothing wrong.
	Everyone bool
}

// Advice tells the person who was refused what happened, in words fit
// for them: it was their network, or the broker is flooded.
func (e *RateLimitError) Advice() string {
	if e.Everyone {
		return "The support server is receiving too many support codes right now. Wait a minute and try again."
	}
	return "Too many support codes were tried from your network. Wait a minute and try again."
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("too many code attempts; retry in %s", e.RetryAfter.Round(time.Second))
}

// Ticket is the ticket a session is for.
type Ticket struct {
	System string // e.g. "servicenow", "jira"
	ID     string
	URL    string
	Title  string
}

// NewCode returns a support code of CodeDigits digits from crypto/rand.
func NewCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000_000))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return fmt.Sprintf("%0*d", CodeDigits, n.Int64())
}

// CreateSession issues a session owned by owner and its one-time code, on
// behalf of by (the owner, or an admin or integration assigning it). ttl
// zero means the configured default.
func (h *Hub) CreateSession(ctx context.Context, by, owner *store.User, t Ticket, perms []string, ttl time.Duration) (*store.Session, string, error) {
	if len(perms) == 0 {
		perms = DefaultPermissions
	}
	if err := protocol.CheckPermissions(perms); err != nil {
		return nil, "", err
	}
	if ttl <= 0 {
		ttl = h.cfg.CodeTTL
	}
	// To the millisecond, as the store keeps it: the answer's times are
	// those of later reads.
	now := h.cfg.Now().Truncate(time.Millisecond)
	for range 5 { // a code collision is rare; retry with a new one
		code := NewCode()
		if h.isPending(auth.HashToken(code)) {
			continue
		}
		sess := &store.Session{
			ID:            "s_" + auth.RandomToken(12),
			CodeHash:      auth.HashToken(code),
			CodeExpiresAt: now.Add(ttl),
			CreatedBy:     owner.ID,
			TicketID:      t.ID,
			TicketSystem:  t.System,
			TicketURL:     t.URL,
			TicketTitle:   t.Title,
			State:         store.StateWaiting,
			CreatedAt:     now,
			Permissions:   perms,
			InitiatedBy:   "technician",
		}
		err := h.cfg.Store.CreateSession(ctx, sess)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		h.log.InfoContext(ctx, "session created", "session", sess.ID, "by", by.Username, "technician", owner.Username, "ticket", t.ID)
		h.audit(sess.ID, by.Username, "session.created", map[string]any{"technician": owner.Username, "ticket": t.ID})
		return sess, code, nil
	}
	return nil, "", errors.New("create session: could not find a free code")
}

// remoteIP is the address a request came from, for audits.
func remoteIP(r *http.Request) string {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return ip
}

// AllowCode applies the limits on code attempts to one attempt from each
// of keys (a source, an account) and to all sources together.
func (h *Hub) AllowCode(keys ...string) error {
	if _, limited := h.takeCode(keys...); limited != nil {
		return limited
	}
	return nil
}

// takeCode is AllowCode for an attempt whose code is looked up next:
// giveBack returns the attempt when the code turns out not to be a guess
// (see guessed), so that people opening their own links, ten in one
// office behind one address, never use up the allowance that stops
// someone trying codes. Every attempt takes its share first: an address
// out of attempts is refused before its code is looked at, right or not.
func (h *Hub) takeCode(keys ...string) (giveBack func(), limited *RateLimitError) {
	now := h.cfg.Now()
	var wait time.Duration
	var taken []func()
	for _, key := range keys {
		d, give := h.codes.Reserve(key, now)
		wait, taken = max(wait, d), append(taken, give)
	}
	everyone, give := limit.Reserve(h.global, now)
	taken = append(taken, give)
	giveBack = func() {
		for _, give := range taken {
			give()
		}
	}
	if wait > 0 || everyone > 0 {
		// A refused attempt uses up nothing: one address out of attempts
		// must not use up the allowance of all sources together, and so
		// turn away everyone.
		giveBack()
		return nil, &RateLimitError{RetryAfter: max(wait, everyone), Everyone: wait == 0}
	}
	return giveBack, nil
}

// guessed reports whether a code attempt that ended with err counts
// against the limits: a wrong code does. A right code does not, nor one
// already used (the user opening their link again once the host has
// joined) or expired (an old link opened again): such codes are not found
// by guessing, they were given, and counted they locked the user out of
// their next, good link.
func guessed(err error) bool {
	return err != nil && !errors.Is(err, store.ErrCodeUsed) && !errors.Is(err, store.ErrCodeExpired)
}

// AuditCode records one code attempt; the code itself is never recorded.
func (h *Hub) AuditCode(r *http.Request, via, outcome, session, actor string) {
	err := h.cfg.Store.AddCodeAttempt(context.Background(), &store.CodeAttempt{
		At: h.cfg.Now(), Source: remoteIP(r), Via: via, Outcome: outcome, Session: session, Actor: actor,
	})
	if err != nil {
		h.log.Error("audit code attempt", "err", err)
	}
}

// auditRefused records a code attempt the limits refused, at most once a
// minute per source: the first refusal tells of a flood, and recording
// every one would let the flood fill the database.
func (h *Hub) auditRefused(r *http.Request, via, actor string) {
	if h.refused.Take(limit.Source(r), h.cfg.Now()) > 0 {
		return
	}
	h.AuditCode(r, via, "rate_limited", "", actor)
}

// PeekCode returns the session a technician-issued code would join, for
// the join page, counting as an attempt when the code is wrong or expired.
// It never uses the code.
func (h *Hub) PeekCode(r *http.Request, code string) (*store.Session, error) {
	giveBack, limited := h.takeCode("ip:" + limit.Source(r))
	if limited != nil {
		h.auditRefused(r, "join_page", "")
		return nil, limited
	}
	sess, err := h.cfg.Store.PeekCode(r.Context(), auth.HashToken(code), h.cfg.Now())
	if !guessed(err) {
		giveBack()
	}
	h.AuditCode(r, "join_page", codeOutcome(err), sessionID(sess), "")
	return sess, err
}

func sessionID(s *store.Session) string {
	if s == nil {
		return ""
	}
	return s.ID
}

func codeOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrCodeUnknown), errors.Is(err, ErrCodeUnknown):
		return "unknown"
	case errors.Is(err, store.ErrCodeExpired):
		return "expired"
	case errors.Is(err, store.ErrCodeUsed):
		return "used"
	default:
		return "error"
	}
}

// redeem checks a host's code; on failure it tells the host why. Like the
// join page, only a wrong or expired code counts as an attempt.
func (h *Hub) redeem(c *conn, r *http.Request, code string) (*store.Session, bool) {
	giveBack, limited := h.takeCode("ip:" + limit.Source(r))
	if limited != nil {
		h.auditRefused(r, "host", "")
		h.refuse(c, protocol.CodeRateLimited, limited.Advice())
		return nil, false
	}
	sess, err := h.cfg.Store.RedeemCode(r.Context(), auth.HashToken(code), h.cfg.Now())
	if !guessed(err) {
		giveBack()
	}
	h.AuditCode(r, "host", codeOutcome(err), sessionID(sess), "")
	switch {
	case err == nil:
		return sess, true
	case errors.Is(err, store.ErrCodeUnknown) && h.isPending(auth.HashToken(code)):
		// The code a host got for the user, typed into a second host: it is
		// for the technician to enter, and the first host waits for them.
		h.log.Info("host refused: its code was issued to a host that waits", "remote", r.RemoteAddr)
		h.refuse(c, protocol.CodeHostPresent, "This support code belongs to the host that is waiting for your technician in another window or on another computer. "+
			"Read the code out to your technician, who enters it in their console, and use that window; close this one.")
	case errors.Is(err, store.ErrCodeUnknown):
		h.log.Info("host refused: unknown code", "remote", r.RemoteAddr)
		h.refuse(c, protocol.CodeInvalidCode, "That support code is not valid. Check the digits with your technician.")
	case errors.Is(err, store.ErrCodeExpired):
		h.log.Info("host refused: expired code", "remote", r.RemoteAddr)
		h.refuse(c, protocol.CodeExpiredCode, "That support code has expired. Ask your technician for a new one.")
	case errors.Is(err, store.ErrCodeUsed) && h.inSession(auth.HashToken(code)):
		// Most often the user started the host a second time, in another
		// window: the first one is connected and all is well.
		h.log.Info("host refused: its code's session has a host already", "remote", r.RemoteAddr)
		h.refuse(c, protocol.CodeHostPresent, "This support code is already connected from another window or computer, where its session is still going on. "+
			"Use that window and close this one. To share this computer instead, end the session in the other window and ask your technician for a new code.")
	case errors.Is(err, store.ErrCodeUsed):
		h.log.Info("host refused: code already used", "remote", r.RemoteAddr)
		h.refuse(c, protocol.CodeUsedCode, "That support code's session has ended, and each code works once. Ask your technician for a new one.")
	default:
		h.log.Error("redeem code", "err", err)
		h.refuse(c, protocol.CodeInternal, "The broker could not check the code. Try again in a moment.")
	}
	return nil, false
}

// inSession reports whether the session of the code with this hash is
// going on: a host joined with it, and is still in.
// CodeInSession reports whether code's session is going on, its host
// connected: a user opening their link again then learns their session is
// open in the other window, not that the code is spent.
func (h *Hub) CodeInSession(code string) bool {
	return h.inSession(auth.HashToken(code))
}

func (h *Hub) inSession(codeHash string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.live {
		if l.codeHash == codeHash && !l.ended {
			return true
		}
	}
	return false
}

// pendingHost is a host that asked for a code and waits for a technician
// to claim it.
type pendingHost struct {
	expires time.Time
	claimed chan *store.Session // one session, sent by ClaimCode
	gone    bool                // the host left or gave up; guarded by Hub.mu
	// joined is closed once the host has joined the claimed session, or
	// could not: ClaimCode waits for it, so that its answer says what the
	// session is, not what it was a moment before.
	joined     chan struct{}
	joinedOnce sync.Once
}

// join tells a waiting ClaimCode that the host is in, or will not be.
func (p *pendingHost) join() {
	p.joinedOnce.Do(func() { close(p.joined) })
}

func (h *Hub) isPending(codeHash string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending[codeHash] != nil
}

// readResult is one read from a connection, passed through a channel.
type readResult struct {
	env protocol.Envelope
	err error
}

// pump reads c into out until the connection fails or closes; then it
// closes out.
func (h *Hub) pump(c *conn, out chan<- readResult) {
	defer h.wg.Done()
	defer close(out)
	for {
		env, err := c.read()
		select {
		case out <- readResult{env, err}:
		case <-c.done:
			return
		}
		if err != nil && readErrorIsFatal(err) {
			return
		}
	}
}

// issueCode gives a host that asked for one a code, and waits until a
// technician claims it, the code expires or the host leaves. It returns
// the claimed session, how to read the host's next messages, and joined,
// which the caller calls once the host is in the session or cannot be.
func (h *Hub) issueCode(c *conn, r *http.Request) (sess *store.Session, next func() (protocol.Envelope, error), joined func(), ok bool) {
	if _, limited := h.takeCode("ip:" + limit.Source(r)); limited != nil {
		h.auditRefused(r, "host", "")
		h.refuse(c, protocol.CodeRateLimited, limited.Advice())
		return nil, nil, nil, false
	}
	now := h.cfg.Now().Truncate(time.Millisecond) // as the store keeps it
	p := &pendingHost{expires: now.Add(h.cfg.CodeTTL), claimed: make(chan *store.Session, 1), joined: make(chan struct{})}
	defer func() {
		if !ok {
			p.join() // a claim that raced with the failure waits no more
		}
	}()
	var code, hash string
	registered := false
	for range 5 {
		code = NewCode()
		hash = auth.HashToken(code)
		if _, err := h.cfg.Store.PeekCode(r.Context(), hash, now); !errors.Is(err, store.ErrCodeUnknown) {
			continue // some session has this code
		}
		h.mu.Lock()
		if h.pending[hash] == nil && !h.closed {
			h.pending[hash] = p
			registered = true
		}
		h.mu.Unlock()
		if registered {
			break
		}
	}
	if !registered {
		h.refuse(c, protocol.CodeInternal, "The broker could not issue a code. Try again in a moment.")
		return nil, nil, nil, false
	}
	h.AuditCode(r, "host", "issued", "", "")
	h.log.Info("code issued to a host", "remote", r.RemoteAddr)

	msgs := make(chan readResult)
	h.wg.Add(1)
	go h.pump(c, msgs)
	next = func() (protocol.Envelope, error) {
		m, ok := <-msgs
		if !ok {
			return protocol.Envelope{}, websocket.ErrCloseSent // fatal: the connection is gone
		}
		return m.env, m.err
	}

	// If the host goes, a claim that raced with its leaving ends at once.
	abandon := func(reason string) {
		h.mu.Lock()
		delete(h.pending, hash)
		p.gone = true
		h.mu.Unlock()
		select {
		case sess := <-p.claimed:
			if sess != nil {
				h.finish(sess.ID, "broker", EndedHostLost, reason)
			}
		default:
		}
	}
	if err := c.send(protocol.TypeCode, "", protocol.IssuedCode{Code: code, ExpiresAt: p.expires}); err != nil {
		abandon("The user's computer disconnected.")
		return nil, nil, nil, false
	}
	timer := time.NewTimer(p.expires.Sub(now))
	defer timer.Stop()
	for {
		select {
		case sess := <-p.claimed:
			if sess == nil {
				h.refuse(c, protocol.CodeInternal, "The broker could not start the session. Start again for a new code.")
				return nil, nil, nil, false
			}
			return sess, next, p.join, true
		case <-h.stop:
			abandon("The support server is shutting down.")
			h.refuse(c, protocol.CodeInternal, "The support server is shutting down. Try again in a moment.")
			return nil, nil, nil, false
		case <-timer.C:
			abandon("The code expired before a technician claimed it.")
			h.refuse(c, protocol.CodeExpiredCode, "No technician entered the code in time. Start again for a new code.")
			return nil, nil, nil, false
		case m, open := <-msgs:
			if !open {
				abandon("The user's computer disconnected.")
				return nil, nil, nil, false
			}
			if m.err != nil && readErrorIsFatal(m.err) || m.err == nil && m.env.Type == protocol.TypeEnd {
				abandon("The user's computer disconnected.")
				return nil, nil, nil, false
			}
			if m.err != nil { // refused, as in a session
				c.reportReadError("", m.err)
			}
			// Nothing else means anything before a technician claims the code.
		}
	}
}

// ClaimCode lets a technician take the host waiting with code: a session
// is created for them and the ticket, and the host joins it. Only codes
// issued to hosts can be claimed; fails with ErrCodeUnknown or a
// *RateLimitError. Only a claim of a wrong code counts as an attempt.
func (h *Hub) ClaimCode(r *http.Request, tech *store.User, code string, t Ticket, perms []string) (*store.Session, error) {
	giveBack, limited := h.takeCode("ip:"+limit.Source(r), "user:"+tech.Username)
	if limited != nil {
		h.auditRefused(r, "console", tech.Username)
		return nil, limited
	}
	if len(perms) == 0 {
		perms = DefaultPermissions
	}
	if err := protocol.CheckPermissions(perms); err != nil {
		return nil, err
	}
	hash := auth.HashToken(code)
	now := h.cfg.Now().Truncate(time.Millisecond) // as the store keeps it
	h.mu.Lock()
	p := h.pending[hash]
	if p != nil {
		delete(h.pending, hash)
	}
	h.mu.Unlock()
	if p == nil || !now.Before(p.expires) {
		h.AuditCode(r, "console", "unknown", "", tech.Username)
		h.log.Info("code claim refused", "user", tech.Username, "remote", r.RemoteAddr)
		return nil, ErrCodeUnknown
	}
	sess := &store.Session{
		ID:            "s_" + auth.RandomToken(12),
		CodeHash:      hash,
		CodeExpiresAt: p.expires,
		CodeUsedAt:    now,
		CreatedBy:     tech.ID,
		TicketID:      t.ID,
		TicketSystem:  t.System,
		TicketURL:     t.URL,
		TicketTitle:   t.Title,
		State:         store.StateWaiting,
		CreatedAt:     now,
		Permissions:   perms,
		InitiatedBy:   "user",
	}
	if err := h.cfg.Store.CreateSession(r.Context(), sess); err != nil {
		p.claimed <- nil
		return nil, err
	}
	giveBack() // the code was right: the claim is no guess
	h.AuditCode(r, "console", "ok", sess.ID, tech.Username)
	h.log.Info("code claimed", "session", sess.ID, "user", tech.Username, "ticket", t.ID)
	h.audit(sess.ID, tech.Username, "session.created", map[string]any{"technician": tech.Username, "ticket": t.ID, "initiated_by": "user"})
	h.mu.Lock()
	gone := p.gone
	if !gone {
		p.claimed <- sess // buffered: the host's goroutine takes it
	}
	h.mu.Unlock()
	if gone { // the host left while the session was being made
		h.finish(sess.ID, "broker", EndedHostLost, "The user's computer disconnected.")
		return nil, ErrCodeUnknown
	}
	// The host is connected already and joins at once: the answer (and the
	// console page it opens) says so, rather than that the session waits
	// for a computer that is there.
	select {
	case <-p.joined:
	case <-h.stop:
	case <-r.Context().Done():
	case <-time.After(claimJoinWait):
	}
	if now, err := h.cfg.Store.SessionByID(r.Context(), sess.ID); err == nil {
		sess = now
	}
	return sess, nil
}

// claimJoinWait bounds how long a claim waits for the host to join the
// session it was given; joining takes a moment (the recording starts).
const claimJoinWait = 10 * time.Second
