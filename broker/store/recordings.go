package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Recording is the database's summary of a session archive; the archive
// itself is on disk.
type Recording struct {
	Session        string
	State          string // recording, complete, incomplete, failed, deleted
	StartedAt      time.Time
	EndedAt        time.Time
	SizeBytes      int64
	DurationMS     int64
	Segments       int
	Events         int64
	Shells         int
	Files          int
	Clipboard      int
	FramesRelayed  int64
	FramesWritten  int64
	ManifestSHA256 string
	Note           string
	DeletedAt      time.Time
	// Who deleted the archive ("broker" for retention) and the detail of
	// that audit event (its reason, the retention period), from the
	// session's trail; empty unless the recording was deleted.
	DeletedBy    string
	DeletionJSON string

	// From the session, for listing and search.
	TicketID   string
	Technician string
	CreatedBy  int64
	HostJSON   string
}

// RecordingFilter narrows a search of recordings. Zero fields match all.
type RecordingFilter struct {
	// User limits the result to sessions this user owns or was invited
	// to; zero means every session (supervisors and admins).
	User       int64
	Ticket     string // substring of the ticket id, any case
	Technician string // substring of the technician's username, any case
	Host       string // substring of the user's computer name or OS, any case
	From, To   time.Time
	Shell      bool // a shell was opened
	Files      bool // files were moved
	// After, when set, is the last recording of the page before: the
	// search goes on after it (recordings started in the same
	// millisecond are neither skipped nor repeated, as with To).
	After *Recording
	Limit int
}

// CreateRecording notes that a session's archive is being written.
func (s *Store) CreateRecording(ctx context.Context, session string, at time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO recordings (session_id, state, started_at) VALUES (?, 'recording', ?)
		 ON CONFLICT (session_id) DO NOTHING`, session, ms(at))
	if err != nil {
		return fmt.Errorf("create recording %s: %w", session, err)
	}
	return nil
}

// UpdateRecording stores an archive's summary after a seal.
func (s *Store) UpdateRecording(ctx context.Context, r *Recording) error {
	res, err := s.db.ExecContext(ctx,
		`UPDATE recordings SET state = ?, ended_at = ?, size_bytes = ?, duration_ms = ?, segments = ?, events = ?,
		 shells = ?, files = ?, clipboard = ?, frames_relayed = ?, frames_written = ?, manifest_sha256 = ?, note = ?
		 WHERE session_id = ?`,
		r.State, nullMS(r.EndedAt), r.SizeBytes, r.DurationMS, r.Segments, r.Events, r.Shells, r.Files, r.Clipboard,
		r.FramesRelayed, r.FramesWritten, r.ManifestSHA256, r.Note, r.Session)
	if err != nil {
		return fmt.Errorf("update recording %s: %w", r.Session, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO recordings (session_id, state, started_at) VALUES (?, ?, ?)`, r.Session, r.State, ms(r.StartedAt)); err != nil {
			return fmt.Errorf("add recording %s: %w", r.Session, err)
		}
		return s.UpdateRecording(ctx, r)
	}
	return nil
}

// SetRecordingManifest stores the SHA-256 of the manifest an archive is to
// be verified against.
func (s *Store) SetRecordingManifest(ctx context.Context, session, sha256 string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE recordings SET manifest_sha256 = ? WHERE session_id = ?`, sha256, session); err != nil {
		return fmt.Errorf("store recording %s manifest: %w", session, err)
	}
	return nil
}

// MarkRecordingDeleted records that an archive was removed; why is in the
// session's trail (a recording.deleted event).
func (s *Store) MarkRecordingDeleted(ctx context.Context, session string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE recordings SET state = 'deleted', deleted_at = ? WHERE session_id = ?`, ms(at), session)
	if err != nil {
		return fmt.Errorf("mark recording %s deleted: %w", session, err)
	}
	return nil
}

const recordingColumns = `r.session_id, r.state, r.started_at, r.ended_at, r.size_bytes, r.duration_ms, r.segments, r.events,
	r.shells, r.files, r.clipboard, r.frames_relayed, r.frames_written, r.manifest_sha256, r.note, r.deleted_at,
	s.ticket_id, COALESCE(u.username, ''), s.created_by, s.host_json,
	COALESCE((SELECT e.actor` + lastDeletion + `), ''), COALESCE((SELECT e.detail` + lastDeletion + `), '')`

// lastDeletion finds the session's latest recording.deleted event in its
// trail: who deleted the archive, and why.
const lastDeletion = ` FROM session_events e WHERE e.session_id = r.session_id AND e.type = 'recording.deleted' ORDER BY e.id DESC LIMIT 1`

const recordingFrom = ` FROM recordings r JOIN sessions s ON s.id = r.session_id LEFT JOIN users u ON u.id = s.created_by`

func scanRecording(row scanner) (*Recording, error) {
	var r Recording
	var started, ended, deleted sql.NullInt64
	err := row.Scan(&r.Session, &r.State, &started, &ended, &r.SizeBytes, &r.DurationMS, &r.Segments, &r.Events,
		&r.Shells, &r.Files, &r.Clipboard, &r.FramesRelayed, &r.FramesWritten, &r.ManifestSHA256, &r.Note, &deleted,
		&r.TicketID, &r.Technician, &r.CreatedBy, &r.HostJSON, &r.DeletedBy, &r.DeletionJSON)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.StartedAt, r.EndedAt, r.DeletedAt = fromMS(started), fromMS(ended), fromMS(deleted)
	return &r, nil
}

// RecordingBySession looks one recording up.
func (s *Store) RecordingBySession(ctx context.Context, session string) (*Recording, error) {
	return scanRecording(s.db.QueryRowContext(ctx, "SELECT "+recordingColumns+recordingFrom+" WHERE r.session_id = ?", session))
}

// escapeLike quotes the wildcards of a LIKE pattern.
func escapeLike(v string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(v)
}

// hostField is one field of the host's report (s.host_json), NULL when the
// host never connected.
func hostField(name string) string {
	return `CASE WHEN json_valid(s.host_json) THEN json_extract(s.host_json, '$.` + name + `') END`
}

// SearchRecordings returns recordings matching f, newest first, at most
// f.Limit of them (100 by default), and whether more match.
func (s *Store) SearchRecordings(ctx context.Context, f RecordingFilter) (list []*Recording, more bool, err error) {
	var where []string
	var args []any
	if f.User != 0 {
		where = append(where, "(s.created_by = ? OR s.id IN (SELECT session_id FROM session_participants WHERE user_id = ? AND former = 0))")
		args = append(args, f.User, f.User)
	}
	if f.Ticket != "" {
		where = append(where, `lower_text(s.ticket_id) LIKE ? ESCAPE '\'`)
		args = append(args, "%"+escapeLike(strings.ToLower(f.Ticket))+"%")
	}
	if f.Technician != "" {
		// Like the ticket and the computer: a supervisor types part of
		// the name, in whatever case, and "alice" finds Alice's.
		// Its technician, a colleague invited in, or one who had it
		// before a handover: whoever worked it.
		where = append(where, `(u.username LIKE ? ESCAPE '\' OR s.id IN (SELECT p.session_id FROM session_participants p JOIN users pu ON pu.id = p.user_id WHERE pu.username LIKE ? ESCAPE '\'))`)
		args = append(args, "%"+escapeLike(f.Technician)+"%", "%"+escapeLike(f.Technician)+"%")
	}
	if f.Host != "" {
		// The computer's name and OS as the host reported them, not the
		// JSON text they are kept in: a search for "hostname" or a quote
		// matched every recording.
		where = append(where, `(lower_text(`+hostField("hostname")+`) LIKE ? ESCAPE '\' OR lower_text(`+hostField("os")+`) LIKE ? ESCAPE '\')`)
		host := "%" + escapeLike(strings.ToLower(f.Host)) + "%"
		args = append(args, host, host)
	}
	if !f.From.IsZero() {
		where = append(where, "r.started_at >= ?")
		args = append(args, ms(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "r.started_at < ?")
		args = append(args, ms(f.To))
	}
	if f.After != nil {
		where = append(where, "(r.started_at < ? OR (r.started_at = ? AND r.session_id > ?))")
		args = append(args, ms(f.After.StartedAt), ms(f.After.StartedAt), f.After.Session)
	}
	if f.Shell {
		where = append(where, "r.shells > 0")
	}
	if f.Files {
		where = append(where, "r.files > 0")
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	q := "SELECT " + recordingColumns + recordingFrom
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY r.started_at DESC, r.session_id LIMIT ?"
	args = append(args, f.Limit+1) // one more says whether there are more
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("search recordings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			return nil, false, fmt.Errorf("search recordings: %w", err)
		}
		list = append(list, r)
	}
	if len(list) > f.Limit {
		return list[:f.Limit], true, rows.Err()
	}
	return list, false, rows.Err()
}
