package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Session states.
const (
	StateWaiting = "waiting" // created; the host has not joined yet
	StateActive  = "active"  // the host is connected
	StateEnded   = "ended"
)

// Session is one support session, from code to end.
type Session struct {
	ID            string
	CodeHash      string
	CodeExpiresAt time.Time
	CodeUsedAt    time.Time
	CreatedBy     int64
	TicketID      string
	State         string
	HostJSON      string
	CreatedAt     time.Time
	EndedAt       time.Time
	EndReason     string
	// EndCause says why it ended in a word (technician, code_expired,
	// host_lost…; signal's Ended* causes), empty for sessions ended before
	// causes were kept.
	EndCause string
	// Permissions the technician asks the user for.
	Permissions []string
	// The ticket beyond its ID: which system, a link, a title.
	TicketSystem string
	TicketURL    string
	TicketTitle  string
	// InitiatedBy is "technician" (a code was issued for a ticket) or
	// "user" (the host asked for a code, a technician claimed it).
	InitiatedBy string
	// LiveAt is when the user first let a technician in (the first
	// consent.granted of its trail); zero until then. The console counts
	// the session's time from it, whenever its page was opened.
	LiveAt time.Time
}

// Event is one entry of a session's audit trail.
type Event struct {
	ID      int64
	Session string
	At      time.Time
	Actor   string // who did it: a username, "user" (the person at the host), "broker"
	Type    string // e.g. consent.granted, permission.revoked, session.ended
	Detail  string // JSON object
}

// Errors from RedeemCode, so the host can be told exactly what is wrong.
var (
	ErrCodeUnknown = errors.New("unknown code")
	ErrCodeExpired = errors.New("code expired")
	ErrCodeUsed    = errors.New("code already used")
)

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, sess *Session) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO sessions (id, code_hash, code_expires_at, code_used_at, created_by, ticket_id, state, created_at, permissions,
		   ticket_system, ticket_url, ticket_title, initiated_by)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sess.ID, sess.CodeHash, ms(sess.CodeExpiresAt), nullMS(sess.CodeUsedAt), sess.CreatedBy, sess.TicketID, sess.State, ms(sess.CreatedAt), strings.Join(sess.Permissions, ","),
		sess.TicketSystem, sess.TicketURL, sess.TicketTitle, initiatedBy(sess.InitiatedBy))
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("session %s: %w", sess.ID, ErrConflict)
		}
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

const sessionColumns = "id, code_hash, code_expires_at, code_used_at, created_by, ticket_id, state, host_json, created_at, ended_at, end_reason, permissions, ticket_system, ticket_url, ticket_title, initiated_by, end_cause, " +
	"(SELECT min(at) FROM session_events WHERE session_id = sessions.id AND type = 'consent.granted')"

func initiatedBy(s string) string {
	if s == "" {
		return "technician"
	}
	return s
}

type scanner interface{ Scan(...any) error }

func scanSession(row scanner) (*Session, error) {
	var s Session
	var expires, used, created, ended, live sql.NullInt64
	var perms string
	err := row.Scan(&s.ID, &s.CodeHash, &expires, &used, &s.CreatedBy, &s.TicketID, &s.State, &s.HostJSON, &created, &ended, &s.EndReason, &perms,
		&s.TicketSystem, &s.TicketURL, &s.TicketTitle, &s.InitiatedBy, &s.EndCause, &live)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	s.CodeExpiresAt, s.CodeUsedAt, s.CreatedAt, s.EndedAt, s.LiveAt = fromMS(expires), fromMS(used), fromMS(created), fromMS(ended), fromMS(live)
	if perms != "" {
		s.Permissions = strings.Split(perms, ",")
	}
	return &s, nil
}

// SessionByID looks a session up.
func (s *Store) SessionByID(ctx context.Context, id string) (*Session, error) {
	return scanSession(s.db.QueryRowContext(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE id = ?", id))
}

// SessionFilter narrows ListSessions; zero fields match everything.
type SessionFilter struct {
	// Visible limits the list to sessions this user owns or was invited
	// to (technicians see only theirs).
	Visible      int64
	Technician   int64 // the owner
	TicketID     string
	TicketSystem string
	State        string
	Since, Until time.Time // created at or after Since, before Until
	// After, when set, is the last session of the page before: the list
	// goes on after it (sessions created in the same millisecond are
	// neither skipped nor repeated, as with Until).
	After *Session
	Limit int
}

// ListSessions returns the newest sessions first that match f.
func (s *Store) ListSessions(ctx context.Context, f SessionFilter) ([]*Session, error) {
	q := "SELECT " + sessionColumns + " FROM sessions WHERE 1 = 1"
	var args []any
	if f.Visible != 0 {
		q += " AND (created_by = ? OR id IN (SELECT session_id FROM session_participants WHERE user_id = ? AND former = 0))"
		args = append(args, f.Visible, f.Visible)
	}
	if f.Technician != 0 {
		// Who worked it: its technician, a colleague invited in, or one
		// who had it before a handover.
		q += " AND (created_by = ? OR id IN (SELECT session_id FROM session_participants WHERE user_id = ?))"
		args = append(args, f.Technician, f.Technician)
	}
	if f.TicketID != "" {
		q += " AND ticket_id = ?"
		args = append(args, f.TicketID)
	}
	if f.TicketSystem != "" {
		q += " AND ticket_system = ?"
		args = append(args, f.TicketSystem)
	}
	if f.State != "" {
		q += " AND state = ?"
		args = append(args, f.State)
	}
	if !f.Since.IsZero() {
		q += " AND created_at >= ?"
		args = append(args, ms(f.Since))
	}
	if !f.Until.IsZero() {
		q += " AND created_at < ?"
		args = append(args, ms(f.Until))
	}
	if f.After != nil {
		q += " AND (created_at < ? OR (created_at = ? AND id > ?))"
		args = append(args, ms(f.After.CreatedAt), ms(f.After.CreatedAt), f.After.ID)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += " ORDER BY created_at DESC, id LIMIT ?"
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var out []*Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		out = append(out, sess)
	}
	return out, rows.Err()
}

// CountWaitingSessions counts the sessions waiting for the user's
// computer to join. The state is written out, not a parameter, so that the
// count reads the partial index sessions_waiting: its work grows with the
// codes waiting now, not with every session ever held.
func (s *Store) CountWaitingSessions(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM sessions WHERE state = '"+StateWaiting+"'").Scan(&n); err != nil {
		return 0, fmt.Errorf("count waiting sessions: %w", err)
	}
	return n, nil
}

// RedeemCode marks a code used, exactly once, and returns its session. It
// fails with ErrCodeUnknown, ErrCodeExpired or ErrCodeUsed.
func (s *Store) RedeemCode(ctx context.Context, codeHash string, now time.Time) (*Session, error) {
	sess, err := scanSession(s.db.QueryRowContext(ctx,
		`UPDATE sessions SET code_used_at = ?
		 WHERE code_hash = ? AND code_used_at IS NULL AND code_expires_at > ? AND state = ?
		 RETURNING `+sessionColumns, ms(now), codeHash, ms(now), StateWaiting))
	if err == nil {
		return sess, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("redeem code: %w", err)
	}
	return s.PeekCode(ctx, codeHash, now)
}

// PeekCode returns the session a code would join without using the code.
// It fails with ErrCodeUnknown, ErrCodeExpired or ErrCodeUsed.
func (s *Store) PeekCode(ctx context.Context, codeHash string, now time.Time) (*Session, error) {
	sess, err := scanSession(s.db.QueryRowContext(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE code_hash = ?", codeHash))
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrCodeUnknown
	case err != nil:
		return nil, fmt.Errorf("look up code: %w", err)
	case sess.CodeUsedAt.IsZero() && !sess.CodeExpiresAt.After(now):
		return nil, ErrCodeExpired // also once the session has ended for it
	case !sess.CodeUsedAt.IsZero() || sess.State != StateWaiting:
		return nil, ErrCodeUsed
	default:
		return sess, nil
	}
}

// SetSessionActive records that the host joined.
func (s *Store) SetSessionActive(ctx context.Context, id, hostJSON string) error {
	_, err := s.db.ExecContext(ctx, "UPDATE sessions SET state = ?, host_json = ? WHERE id = ? AND state != ?",
		StateActive, hostJSON, id, StateEnded)
	return err
}

// InterruptedSessions returns up to 100 sessions a broker stopped during:
// those live, and those whose code was used before the host was recorded
// as joined (nothing else would end them: only unused codes expire).
func (s *Store) InterruptedSessions(ctx context.Context) ([]string, error) {
	return s.sessionIDs(ctx, "sessions left live",
		"SELECT id FROM sessions WHERE state = ? OR (state = ? AND code_used_at IS NOT NULL) LIMIT 100", StateActive, StateWaiting)
}

// sessionIDs runs query, which returns session ids; what names them in
// an error.
func (s *Store) sessionIDs(ctx context.Context, what, query string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return ids, nil
}

// MarkAlive notes that the sessions ids, whose hosts are connected, are
// going on at now, for LastAlive. A session whose host's joining was not
// written (the database refused it) is recorded as active here.
func (s *Store) MarkAlive(ctx context.Context, ids []string, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{ms(now), StateActive}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := s.db.ExecContext(ctx, "UPDATE sessions SET alive_at = ?, state = ? WHERE state != '"+StateEnded+"' AND id IN (?"+strings.Repeat(", ?", len(ids)-1)+")", args...)
	if err != nil {
		return fmt.Errorf("mark sessions alive: %w", err)
	}
	return nil
}

// LastAlive is the last moment a session is known to have been going on,
// from what was stored before the time before: its last MarkAlive, the
// last entry of its audit trail, the use of its code or its creation,
// whichever came last. It is when a session the broker could not end (a
// broker killed, a machine that lost power) ended, as near as is known.
func (s *Store) LastAlive(ctx context.Context, id string, before time.Time) (time.Time, error) {
	var at sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		`SELECT max(created_at, COALESCE(code_used_at, 0), COALESCE(alive_at, 0),
		   COALESCE((SELECT max(at) FROM session_events WHERE session_id = sessions.id AND at < ?), 0))
		 FROM sessions WHERE id = ?`, ms(before), id).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, ErrNotFound
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("last sign of session %s: %w", id, err)
	}
	return fromMS(at), nil
}

// EndSession records the end of a session, why in a word (cause) and in a
// sentence (reason); ending twice keeps the first.
func (s *Store) EndSession(ctx context.Context, id, cause, reason string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, "UPDATE sessions SET state = ?, ended_at = ?, end_cause = ?, end_reason = ? WHERE id = ? AND state != ?",
		StateEnded, ms(now), cause, reason, id, StateEnded)
	return err
}

// EndExpiredCodes ends the sessions still waiting for a user whose code
// expired unused by now, each as of its code's expiry (when nobody could
// join it any more), and returns their ids. Each session is ended once:
// one ended meanwhile by other means keeps its end.
func (s *Store) EndExpiredCodes(ctx context.Context, cause, reason string, now time.Time) ([]string, error) {
	return s.sessionIDs(ctx, "end sessions whose code expired",
		`UPDATE sessions SET state = ?, ended_at = code_expires_at, end_cause = ?, end_reason = ?
		 WHERE state = ? AND code_used_at IS NULL AND code_expires_at <= ?
		 RETURNING id`, StateEnded, cause, reason, StateWaiting, ms(now))
}

// AddEvent appends to a session's audit trail.
func (s *Store) AddEvent(ctx context.Context, e *Event) error {
	if e.Detail == "" {
		e.Detail = "{}"
	}
	res, err := s.db.ExecContext(ctx, "INSERT INTO session_events (session_id, at, actor, type, detail) VALUES (?, ?, ?, ?, ?)",
		e.Session, ms(e.At), e.Actor, e.Type, e.Detail)
	if err != nil {
		return fmt.Errorf("add event %s: %w", e.Type, err)
	}
	e.ID, err = res.LastInsertId()
	return err
}

// Events returns a session's audit trail, oldest first.
func (s *Store) Events(ctx context.Context, session string) ([]*Event, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, session_id, at, actor, type, detail FROM session_events WHERE session_id = ? ORDER BY id", session)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []*Event
	for rows.Next() {
		var e Event
		var at sql.NullInt64
		if err := rows.Scan(&e.ID, &e.Session, &at, &e.Actor, &e.Type, &e.Detail); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		e.At = fromMS(at)
		out = append(out, &e)
	}
	return out, rows.Err()
}

// AddParticipant lets user into a session owned by someone else.
func (s *Store) AddParticipant(ctx context.Context, session string, user, addedBy int64, now time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO session_participants (session_id, user_id, added_by, added_at) VALUES (?, ?, ?, ?)
		 ON CONFLICT (session_id, user_id) DO UPDATE SET former = 0`, // one who handed it over, invited back
		session, user, addedBy, ms(now))
	if err != nil {
		return fmt.Errorf("add participant: %w", err)
	}
	return nil
}

// IsParticipant reports whether user was invited into session, and did
// not hand it over since.
func (s *Store) IsParticipant(ctx context.Context, session string, user int64) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM session_participants WHERE session_id = ? AND user_id = ? AND former = 0", session, user).Scan(&n)
	return n > 0, err
}

// WaitingSessionsOf returns the sessions of the technician user waiting
// for their user, into which no colleague was invited.
func (s *Store) WaitingSessionsOf(ctx context.Context, user int64) ([]string, error) {
	return s.sessionIDs(ctx, "waiting sessions",
		`SELECT id FROM sessions WHERE created_by = ? AND state = ?
		 AND id NOT IN (SELECT session_id FROM session_participants WHERE former = 0)`, user, StateWaiting)
}

// HandOver makes user the technician of session in place of its current
// one, who keeps no access to it (not even as a colleague invited in
// before), only their place in its history.
func (s *Store) HandOver(ctx context.Context, session string, user int64, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("hand over: %w", err)
	}
	defer tx.Rollback()
	var was int64
	if err := tx.QueryRowContext(ctx, "SELECT created_by FROM sessions WHERE id = ?", session).Scan(&was); errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	} else if err != nil {
		return fmt.Errorf("hand over: %w", err)
	}
	if was == user {
		return nil
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO session_participants (session_id, user_id, added_by, added_at, former) VALUES (?, ?, ?, ?, 1)
		 ON CONFLICT (session_id, user_id) DO UPDATE SET former = 1`, session, was, was, ms(now)); err != nil {
		return fmt.Errorf("hand over: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE sessions SET created_by = ? WHERE id = ?", user, session); err != nil {
		return fmt.Errorf("hand over: %w", err)
	}
	return tx.Commit()
}
