package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Webhook delivery states.
const (
	DeliveryPending   = "pending"   // waiting for its next attempt
	DeliverySucceeded = "succeeded" // the endpoint answered 2xx
	DeliveryFailed    = "failed"    // every attempt failed
)

// WebhookEndpoint is a ticket system's URL that hears about session events.
type WebhookEndpoint struct {
	ID  string
	URL string
	// Secret signs every delivery (HMAC-SHA256); it is shown to the admin
	// once and kept here in the clear because signing needs it.
	Secret string
	// OldSecret is the secret Secret replaced, kept like it; deliveries
	// are signed with it too until OldSecretUntil, so that the receiver
	// has time to save the new one. Empty when there is none.
	OldSecret      string
	OldSecretUntil time.Time
	Events         []string // event types the endpoint subscribed to
	Description    string
	Enabled        bool
	CreatedBy      int64
	CreatedAt      time.Time
}

// WebhookEvent is one event as sent to endpoints: its JSON body is fixed
// when it happens, so every delivery and redelivery sends the same bytes.
type WebhookEvent struct {
	ID      string
	Type    string
	Session string
	// OnceKey, when set, makes the event unique: a second event with the
	// same key is not stored (e.g. one session.started per session).
	OnceKey   string
	Payload   []byte
	CreatedAt time.Time
}

// WebhookDelivery is one event on its way to one endpoint.
type WebhookDelivery struct {
	ID            string
	EndpointID    string
	EventID       string
	EventType     string // filled in by reads, from the event
	State         string
	Attempts      int
	NextAttemptAt time.Time // zero once the delivery is no longer pending
	LastStatus    int
	LastError     string
	RedeliveryOf  string // the delivery an admin asked to send again
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// WebhookAttempt is one HTTP request of a delivery.
type WebhookAttempt struct {
	DeliveryID string
	Attempt    int // 1 for the first
	At         time.Time
	StatusCode int    // 0 when no answer arrived
	Error      string // why the attempt failed, empty on success
	Duration   time.Duration
	Response   string // the start of the answer's body
}

const webhookEndpointColumns = "id, url, secret, old_secret, old_secret_until, events, description, enabled, created_by, created_at"

func scanWebhookEndpoint(row scanner) (*WebhookEndpoint, error) {
	var e WebhookEndpoint
	var events string
	var created, oldUntil sql.NullInt64
	err := row.Scan(&e.ID, &e.URL, &e.Secret, &e.OldSecret, &oldUntil, &events, &e.Description, &e.Enabled, &e.CreatedBy, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if events != "" {
		e.Events = strings.Split(events, ",")
	}
	e.CreatedAt, e.OldSecretUntil = fromMS(created), fromMS(oldUntil)
	return &e, nil
}

// CreateWebhookEndpoint stores a new endpoint.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, e *WebhookEndpoint) error {
	_, err := s.db.ExecContext(ctx,
		"INSERT INTO webhook_endpoints ("+webhookEndpointColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		e.ID, e.URL, e.Secret, e.OldSecret, nullMS(e.OldSecretUntil), strings.Join(e.Events, ","), e.Description, e.Enabled, e.CreatedBy, ms(e.CreatedAt))
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("webhook endpoint %s: %w", e.ID, ErrConflict)
		}
		return fmt.Errorf("create webhook endpoint: %w", err)
	}
	return nil
}

// WebhookEndpointByID looks an endpoint up.
func (s *Store) WebhookEndpointByID(ctx context.Context, id string) (*WebhookEndpoint, error) {
	return scanWebhookEndpoint(s.db.QueryRowContext(ctx, "SELECT "+webhookEndpointColumns+" FROM webhook_endpoints WHERE id = ?", id))
}

// WebhookEndpoints lists every endpoint, oldest first.
func (s *Store) WebhookEndpoints(ctx context.Context) ([]*WebhookEndpoint, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+webhookEndpointColumns+" FROM webhook_endpoints ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	defer rows.Close()
	var out []*WebhookEndpoint
	for rows.Next() {
		e, err := scanWebhookEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("list webhook endpoints: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// WebhookEndpointChange is what UpdateWebhookEndpoint changes: the fields
// given, not nil.
type WebhookEndpointChange struct {
	Events      *[]string
	Description *string
	Enabled     *bool
}

// UpdateWebhookEndpoint changes the fields ch gives of the endpoint id and
// returns it as it is now. It writes those columns only: an admin's new
// description saved from the endpoint as it was read must not enable it
// again after another admin disabled it. Its URL never changes, its secret
// only through SetWebhookEndpointSecret.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, id string, ch WebhookEndpointChange) (*WebhookEndpoint, error) {
	var set []string
	var args []any
	if ch.Events != nil {
		set, args = append(set, "events = ?"), append(args, strings.Join(*ch.Events, ","))
	}
	if ch.Description != nil {
		set, args = append(set, "description = ?"), append(args, *ch.Description)
	}
	if ch.Enabled != nil {
		set, args = append(set, "enabled = ?"), append(args, *ch.Enabled)
	}
	if len(set) == 0 {
		return s.WebhookEndpointByID(ctx, id)
	}
	e, err := scanWebhookEndpoint(s.db.QueryRowContext(ctx, "UPDATE webhook_endpoints SET "+strings.Join(set, ", ")+" WHERE id = ? RETURNING "+webhookEndpointColumns,
		append(args, id)...))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("update webhook endpoint %s: %w", id, err)
	}
	return e, err
}

// SetWebhookEndpointSecret replaces an endpoint's signing secret with
// secret. The one it replaces is kept as the old secret until oldUntil;
// with a zero oldUntil it is dropped at once. An old secret kept from an
// earlier change is dropped either way.
func (s *Store) SetWebhookEndpointSecret(ctx context.Context, id, secret string, oldUntil time.Time) error {
	keep := !oldUntil.IsZero()
	res, err := s.db.ExecContext(ctx,
		"UPDATE webhook_endpoints SET old_secret = CASE WHEN ? THEN secret ELSE '' END, old_secret_until = ?, secret = ? WHERE id = ?",
		keep, nullMS(oldUntil), secret, id)
	if err != nil {
		return fmt.Errorf("change webhook secret %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DropOldWebhookSecrets forgets the old secrets whose time ended at now,
// so that the database holds no secret that signs nothing.
func (s *Store) DropOldWebhookSecrets(ctx context.Context, now time.Time) error {
	_, err := s.db.ExecContext(ctx,
		"UPDATE webhook_endpoints SET old_secret = '', old_secret_until = NULL WHERE old_secret_until IS NOT NULL AND old_secret_until <= ?", ms(now))
	if err != nil {
		return fmt.Errorf("drop old webhook secrets: %w", err)
	}
	return nil
}

// DeleteWebhookEndpoint removes an endpoint with its deliveries.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM webhook_endpoints WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("delete webhook endpoint %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// AddWebhookEvent stores an event and, in the same transaction, a pending
// delivery due at now for every enabled endpoint subscribed to its type
// that existed when the event happened (an endpoint never hears of what
// happened before it was registered); newID names each delivery. It
// reports false, and stores nothing, when an event with the same OnceKey
// exists.
func (s *Store) AddWebhookEvent(ctx context.Context, ev *WebhookEvent, now time.Time, newID func() string) ([]*WebhookDelivery, bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("add webhook event: %w", err)
	}
	defer tx.Rollback()
	var once sql.NullString
	if ev.OnceKey != "" {
		once = sql.NullString{String: ev.OnceKey, Valid: true}
	}
	res, err := tx.ExecContext(ctx,
		"INSERT INTO webhook_events (id, type, session_id, once_key, payload, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (once_key) DO NOTHING",
		ev.ID, ev.Type, ev.Session, once, string(ev.Payload), ms(ev.CreatedAt))
	if err != nil {
		return nil, false, fmt.Errorf("add webhook event %s: %w", ev.Type, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, false, nil
	}
	// Read every subscriber before writing: the one connection cannot
	// serve a query and an insert at once.
	rows, err := tx.QueryContext(ctx, "SELECT id, events FROM webhook_endpoints WHERE enabled = 1 AND created_at <= ? ORDER BY created_at, id", ms(ev.CreatedAt))
	if err != nil {
		return nil, false, fmt.Errorf("add webhook event %s: %w", ev.Type, err)
	}
	var endpoints []string
	for rows.Next() {
		var id, events string
		if err := rows.Scan(&id, &events); err != nil {
			rows.Close()
			return nil, false, fmt.Errorf("add webhook event %s: %w", ev.Type, err)
		}
		if slices.Contains(strings.Split(events, ","), ev.Type) {
			endpoints = append(endpoints, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("add webhook event %s: %w", ev.Type, err)
	}
	var out []*WebhookDelivery
	for _, ep := range endpoints {
		d := &WebhookDelivery{ID: newID(), EndpointID: ep, EventID: ev.ID, EventType: ev.Type, State: DeliveryPending,
			NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}
		if err := insertDelivery(ctx, tx, d); err != nil {
			return nil, false, err
		}
		out = append(out, d)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("add webhook event %s: %w", ev.Type, err)
	}
	return out, true, nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertDelivery(ctx context.Context, db execer, d *WebhookDelivery) error {
	_, err := db.ExecContext(ctx,
		`INSERT INTO webhook_deliveries (id, endpoint_id, event_id, state, attempts, next_attempt_at, redelivery_of, created_at, updated_at)
		 VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)`,
		d.ID, d.EndpointID, d.EventID, d.State, nullMS(d.NextAttemptAt), d.RedeliveryOf, ms(d.CreatedAt), ms(d.UpdatedAt))
	if err != nil {
		return fmt.Errorf("add webhook delivery: %w", err)
	}
	return nil
}

// AddWebhookDelivery stores a new pending delivery of an existing event,
// as when an admin asks for one to be sent again.
func (s *Store) AddWebhookDelivery(ctx context.Context, d *WebhookDelivery) error {
	return insertDelivery(ctx, s.db, d)
}

// LastWebhookSequence returns the largest sequence number among the
// newest stored events (0 when there are none), so that numbering can go
// on from it after a restart. Events are numbered in the order they are
// stored, so the newest hundred hold the largest.
func (s *Store) LastWebhookSequence(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		`SELECT MAX(CAST(json_extract(payload, '$.sequence') AS INTEGER))
		 FROM (SELECT payload FROM webhook_events ORDER BY rowid DESC LIMIT 100)`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("read the last webhook sequence: %w", err)
	}
	return seq.Int64, nil
}

// EndedSessionsWithoutEvent returns up to 100 sessions that ended after
// from and at or before to, and have no event of type typ stored for them
// once (OnceKey typ:<session>), the longest ended first. It finds the
// session.ended events lost when the broker stopped, or the database
// refused the event, between ending a session and storing its event.
func (s *Store) EndedSessionsWithoutEvent(ctx context.Context, typ string, from, to time.Time) ([]string, error) {
	return s.sessionIDs(ctx, "list sessions ended without "+typ,
		`SELECT s.id FROM sessions s
		 WHERE s.ended_at > ? AND s.ended_at <= ? AND s.state = ?
		   AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.once_key = ? || s.id)
		 ORDER BY s.ended_at LIMIT 100`, ms(from), ms(to), StateEnded, typ+":")
}

// WebhookEventByID looks an event up.
func (s *Store) WebhookEventByID(ctx context.Context, id string) (*WebhookEvent, error) {
	var ev WebhookEvent
	var once sql.NullString
	var payload string
	var created sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT id, type, session_id, once_key, payload, created_at FROM webhook_events WHERE id = ?", id).
		Scan(&ev.ID, &ev.Type, &ev.Session, &once, &payload, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up webhook event: %w", err)
	}
	ev.OnceKey, ev.Payload, ev.CreatedAt = once.String, []byte(payload), fromMS(created)
	return &ev, nil
}

const webhookDeliveryColumns = `d.id, d.endpoint_id, d.event_id, e.type, d.state, d.attempts, d.next_attempt_at,
	d.last_status, d.last_error, d.redelivery_of, d.created_at, d.updated_at`

const webhookDeliveryFrom = " FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id "

func scanWebhookDelivery(row scanner) (*WebhookDelivery, error) {
	var d WebhookDelivery
	var next, created, updated sql.NullInt64
	err := row.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventType, &d.State, &d.Attempts, &next,
		&d.LastStatus, &d.LastError, &d.RedeliveryOf, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = fromMS(next), fromMS(created), fromMS(updated)
	return &d, nil
}

func (s *Store) queryDeliveries(ctx context.Context, query string, args ...any) ([]*WebhookDelivery, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+webhookDeliveryColumns+webhookDeliveryFrom+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*WebhookDelivery
	for rows.Next() {
		d, err := scanWebhookDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// CountPendingWebhookDeliveries counts the deliveries waiting for their
// next attempt, from the index on their state.
func (s *Store) CountPendingWebhookDeliveries(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM webhook_deliveries WHERE state = ?", DeliveryPending).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending webhook deliveries: %w", err)
	}
	return n, nil
}

// WebhookDeliveryByID looks a delivery up.
func (s *Store) WebhookDeliveryByID(ctx context.Context, id string) (*WebhookDelivery, error) {
	return scanWebhookDelivery(s.db.QueryRowContext(ctx, "SELECT "+webhookDeliveryColumns+webhookDeliveryFrom+"WHERE d.id = ?", id))
}

// DueWebhookDeliveries returns up to limit pending deliveries of enabled
// endpoints whose next attempt is due at now, the longest waiting first.
func (s *Store) DueWebhookDeliveries(ctx context.Context, now time.Time, limit int) ([]*WebhookDelivery, error) {
	out, err := s.queryDeliveries(ctx,
		`JOIN webhook_endpoints w ON w.id = d.endpoint_id
		 WHERE d.state = ? AND d.next_attempt_at <= ? AND w.enabled = 1
		 ORDER BY d.next_attempt_at, d.created_at LIMIT ?`, DeliveryPending, ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("list due webhook deliveries: %w", err)
	}
	return out, nil
}

// NextDueWebhookDeliveries returns, for each enabled endpoint not in skip,
// its longest-waiting pending delivery that is due at now, the longest
// waiting first. One per endpoint, so that an endpoint with a long backlog
// does not hide the others' deliveries.
func (s *Store) NextDueWebhookDeliveries(ctx context.Context, now time.Time, skip []string) ([]*WebhookDelivery, error) {
	args := []any{DeliveryPending, ms(now)}
	notIn := ""
	if len(skip) > 0 {
		notIn = " AND w.id NOT IN (?" + strings.Repeat(", ?", len(skip)-1) + ")"
		for _, id := range skip {
			args = append(args, id)
		}
	}
	out, err := s.queryDeliveries(ctx, nextDueQuery(notIn), args...)
	if err != nil {
		return nil, fmt.Errorf("list due webhook deliveries: %w", err)
	}
	return out, nil
}

// nextDueQuery is NextDueWebhookDeliveries' query after the FROM, with
// notIn leaving out the busy endpoints. Each endpoint's next delivery is
// found in the index webhook_deliveries_endpoint_due, so that a pass costs
// the same however many deliveries wait.
func nextDueQuery(notIn string) string {
	return `WHERE d.id IN (
			SELECT (SELECT x.id FROM webhook_deliveries x
				WHERE x.endpoint_id = w.id AND x.state = ? AND x.next_attempt_at <= ?
				ORDER BY x.next_attempt_at, x.created_at LIMIT 1)
			FROM webhook_endpoints w WHERE w.enabled = 1` + notIn + `)
		 ORDER BY d.next_attempt_at, d.created_at`
}

// WebhookDeliveryFilter picks an endpoint's deliveries to list.
type WebhookDeliveryFilter struct {
	State string // only those in this state; any state when empty
	// Before is the id of a delivery of the endpoint, the last of a page:
	// only those listed after it are, for the next page. Deliveries made
	// in the same millisecond keep the order they were stored in.
	Before string
	Limit  int
}

// WebhookDeliveries returns an endpoint's deliveries that f picks, newest
// first.
func (s *Store) WebhookDeliveries(ctx context.Context, endpoint string, f WebhookDeliveryFilter) ([]*WebhookDelivery, error) {
	query, args := "WHERE d.endpoint_id = ?", []any{endpoint}
	if f.State != "" {
		query, args = query+" AND d.state = ?", append(args, f.State)
	}
	if f.Before != "" {
		query += " AND (d.created_at, d.rowid) < (SELECT created_at, rowid FROM webhook_deliveries WHERE id = ? AND endpoint_id = ?)"
		args = append(args, f.Before, endpoint)
	}
	out, err := s.queryDeliveries(ctx, query+" ORDER BY d.created_at DESC, d.rowid DESC LIMIT ?", append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	return out, nil
}

// RecordWebhookAttempt logs one attempt and moves its delivery on: to
// state, with the next attempt due at next when state is pending.
func (s *Store) RecordWebhookAttempt(ctx context.Context, a *WebhookAttempt, state string, next time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record webhook attempt: %w", err)
	}
	defer tx.Rollback()
	if state != DeliveryPending {
		next = time.Time{}
	}
	res, err := tx.ExecContext(ctx,
		`UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, updated_at = ?
		 WHERE id = ?`,
		state, a.Attempt, nullMS(next), a.StatusCode, a.Error, ms(a.At), a.DeliveryID)
	if err != nil {
		return fmt.Errorf("record webhook attempt: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound // the endpoint was deleted meanwhile
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, duration_ms, response) VALUES (?, ?, ?, ?, ?, ?, ?)",
		a.DeliveryID, a.Attempt, ms(a.At), a.StatusCode, a.Error, a.Duration.Milliseconds(), a.Response); err != nil {
		return fmt.Errorf("record webhook attempt: %w", err)
	}
	return tx.Commit()
}

// PruneWebhookHistory deletes the deliveries no longer pending whose last
// change was before before, with their attempts, and then the events
// stored before before that no delivery refers to any more. It reports
// how many deliveries and events it deleted. A pending delivery and its
// event are kept however old: they are still to be sent.
func (s *Store) PruneWebhookHistory(ctx context.Context, before time.Time) (deliveries, events int64, err error) {
	// The attempts go with their deliveries (ON DELETE CASCADE).
	res, err := s.db.ExecContext(ctx, "DELETE FROM webhook_deliveries WHERE state IN (?, ?) AND updated_at < ?",
		DeliverySucceeded, DeliveryFailed, ms(before))
	if err != nil {
		return 0, 0, fmt.Errorf("prune webhook deliveries: %w", err)
	}
	deliveries, _ = res.RowsAffected()
	res, err = s.db.ExecContext(ctx,
		`DELETE FROM webhook_events WHERE created_at < ?
		 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)`, ms(before))
	if err != nil {
		return deliveries, 0, fmt.Errorf("prune webhook events: %w", err)
	}
	events, _ = res.RowsAffected()
	return deliveries, events, nil
}

// WebhookAttempts returns the attempts of the given deliveries, by
// delivery, first attempt first.
func (s *Store) WebhookAttempts(ctx context.Context, deliveries []string) (map[string][]*WebhookAttempt, error) {
	out := map[string][]*WebhookAttempt{}
	if len(deliveries) == 0 {
		return out, nil
	}
	args := make([]any, len(deliveries))
	for i, id := range deliveries {
		args[i] = id
	}
	rows, err := s.db.QueryContext(ctx,
		"SELECT delivery_id, attempt, at, status_code, error, duration_ms, response FROM webhook_attempts WHERE delivery_id IN (?"+
			strings.Repeat(", ?", len(deliveries)-1)+") ORDER BY delivery_id, attempt, id", args...)
	if err != nil {
		return nil, fmt.Errorf("list webhook attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a WebhookAttempt
		var at sql.NullInt64
		var durMS int64
		if err := rows.Scan(&a.DeliveryID, &a.Attempt, &at, &a.StatusCode, &a.Error, &durMS, &a.Response); err != nil {
			return nil, fmt.Errorf("list webhook attempts: %w", err)
		}
		a.At, a.Duration = fromMS(at), time.Duration(durMS)*time.Millisecond
		out[a.DeliveryID] = append(out[a.DeliveryID], &a)
	}
	return out, rows.Err()
}
