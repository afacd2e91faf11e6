package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tether-support/tether/broker/signal"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/internal/protocol"
)

// Event types an endpoint can subscribe to.
const (
	SessionCreatedType = "session.created"
	HostConnectedType  = "host.connected"
	ConsentGrantedType = "consent.granted"
	ConsentDeniedType  = "consent.denied"
	ConsentRevokedType = "consent.revoked"
	SessionStartedType = "session.started"
	SessionEndedType   = "session.ended"
	RecordingReadyType = "recording.ready"
)

// EventTypes lists every event type, in the order of a session's life.
var EventTypes = []string{SessionCreatedType, HostConnectedType, ConsentGrantedType, ConsentDeniedType,
	ConsentRevokedType, SessionStartedType, SessionEndedType, RecordingReadyType}

// ClosingNotesAudit is the audit trail entry holding the technician's
// closing notes (detail {"notes": "..."}), which session.ended carries.
const ClosingNotesAudit = "session.closing_notes"

// MaxClosingNotes bounds closing notes, in bytes.
const MaxClosingNotes = 8 << 10

// Envelope is the JSON body of every delivery.
type Envelope struct {
	// ID is unique per event; a redelivery sends the same ID, so
	// receivers can drop duplicates.
	ID   string `json:"id"`
	Type string `json:"type"`
	// Sequence grows with every event the broker publishes, in the order
	// they happened. Deliveries are not sent in order (a retry waits while
	// later events go out; workers send side by side), and created_at
	// has whole seconds only, so receivers order a session's events by
	// Sequence. It is the broker's clock in microseconds, kept strictly
	// increasing, so it goes on growing across restarts.
	Sequence  int64     `json:"sequence"`
	CreatedAt time.Time `json:"created_at"`
	Data      any       `json:"data"`
}

// SessionRef starts the data of every session event.
type SessionRef struct {
	SessionID string `json:"session_id"`
	// TicketID is the ticket the session was created for; empty when none.
	// The ticket's system, link and title are empty when not given.
	TicketID     string `json:"ticket_id"`
	TicketSystem string `json:"ticket_system"`
	TicketURL    string `json:"ticket_url"`
	TicketTitle  string `json:"ticket_title"`
	// InitiatedBy is "technician" (a code issued for the ticket) or "user"
	// (the user started the host without a code and a technician claimed it).
	InitiatedBy string `json:"initiated_by"`
	// Technician is the username of the session's owner (the technician who
	// created it, or the one it was handed over to).
	Technician string `json:"technician"`
}

// SessionCreated is the data of session.created. The support code itself
// is never sent.
type SessionCreated struct {
	SessionRef
	PermissionsRequested []string `json:"permissions_requested"`
	// CodeExpiresAt is when the code stops working; left out for a session
	// a technician claimed (initiated_by "user"), whose code is used already.
	CodeExpiresAt *time.Time `json:"code_expires_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

// HostConnected is the data of host.connected: the user's host program
// redeemed the code.
type HostConnected struct {
	SessionRef
	Host        HostInfo  `json:"host"`
	ConnectedAt time.Time `json:"connected_at"`
}

// HostInfo describes the user's computer as its host program reports it.
type HostInfo struct {
	Hostname string `json:"hostname"`
	OS       string `json:"os"`
}

// ConsentGranted is the data of consent.granted: the user allowed a
// technician (Viewer) some or all of what was asked.
type ConsentGranted struct {
	SessionRef
	Viewer    string    `json:"viewer"`
	Requested []string  `json:"requested"`
	Granted   []string  `json:"granted"`
	At        time.Time `json:"at"`
}

// ConsentDenied is the data of consent.denied: the user declined
// (Reason "denied"), did not answer in time ("timeout"), or could not be
// asked, their computer having no way to show the question ("not_shown").
type ConsentDenied struct {
	SessionRef
	Viewer    string    `json:"viewer"`
	Requested []string  `json:"requested"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
}

// ConsentRevoked is the data of consent.revoked: the user took a
// permission back from every technician in the session.
type ConsentRevoked struct {
	SessionRef
	Permission string    `json:"permission"`
	At         time.Time `json:"at"`
}

// SessionStarted is the data of session.started, sent once per session:
// the user let a technician in for the first time (allowed anything: the
// screen, or only a terminal), as the API's live_at counts it.
type SessionStarted struct {
	SessionRef
	Viewer    string    `json:"viewer"`
	StartedAt time.Time `json:"started_at"`
}

// SessionEnded is the data of session.ended, sent once per session, with
// what a ticket needs for its work log.
type SessionEnded struct {
	SessionRef
	CreatedAt time.Time `json:"created_at"`
	// StartedAt is when the user first let someone in (allowed anything),
	// the API's live_at; null when that never happened.
	StartedAt *time.Time `json:"started_at"`
	EndedAt   time.Time  `json:"ended_at"`
	// DurationSeconds runs from StartedAt to EndedAt; 0 when the session
	// never started.
	DurationSeconds int64  `json:"duration_seconds"`
	EndReason       string `json:"end_reason"`
	// EndCause says why in a word (user, technician, admin, declined,
	// code_expired, host_lost, display_gone, abandoned, recording_failed,
	// shutdown, broker_stopped), for a ticket system to act on; the reason
	// says it in a sentence, for people.
	EndCause string `json:"end_cause"`
	// EndedBy is who ended it when a person did (end_cause technician or
	// admin): the technician, a colleague invited in, or an admin.
	EndedBy string `json:"ended_by,omitempty"`
	// PermissionsGranted is every permission the user granted anyone
	// during the session, even if revoked later.
	PermissionsGranted []string `json:"permissions_granted"`
	// Viewers are the technicians the user let in: those the user allowed
	// something, who may have seen the screen.
	Viewers []string `json:"viewers"`
	// Joined is everyone who joined the session (technicians, colleagues,
	// supervisors), in the order they first joined, whether the user let
	// them in or not: a technician the user turned away is here and not in
	// Viewers.
	Joined []string `json:"joined"`
	// ClosingNotes are the technician's notes given when ending the
	// session through the API; empty when none.
	ClosingNotes string `json:"closing_notes"`
	// FilesMoved are the transfers the user's computer completed, in order.
	FilesMoved []FileMoved `json:"files_moved"`
	// ShellCommands are the command lines typed into remote shells, in
	// order, as typed (see ShellCommand); at most maxShellCommands.
	ShellCommands []ShellCommand `json:"shell_commands"`
}

// maxShellCommands bounds session.ended's list of commands; the session's
// events and its recording hold them all.
const maxShellCommands = 1000

// FileMoved is one completed file transfer.
type FileMoved struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// SHA256 is the hex digest both ends checked.
	SHA256 string `json:"sha256"`
	// Direction is "upload" (to the user's computer) or "download" (from it).
	Direction  string    `json:"direction"`
	Technician string    `json:"technician"`
	At         time.Time `json:"at"`
}

// ShellCommand is one command line a technician typed into a remote shell,
// rebuilt from the keystrokes: a line edited with the arrow keys or
// completed with Tab reads as typed, not as the shell ran it.
type ShellCommand struct {
	Command    string    `json:"command"`
	Technician string    `json:"technician"`
	At         time.Time `json:"at"`
}

// RecordingReady is the data of recording.ready, sent once the session's
// archive is sealed: where to get it and what it holds.
type RecordingReady struct {
	SessionRef
	State         string `json:"state"` // complete; failed when writing it failed; incomplete when the broker stopped mid-session (sent at its next start)
	SizeBytes     int64  `json:"size_bytes"`
	DurationMS    int64  `json:"duration_ms"`
	Segments      int    `json:"segments"`
	FramesRelayed int64  `json:"frames_relayed"`
	FramesWritten int64  `json:"frames_written"`
	// ManifestSHA256 is the SHA-256 of the archive's manifest.json as
	// sealed: kept, it tells the archive downloaded later is this one.
	ManifestSHA256 string    `json:"manifest_sha256,omitempty"`
	URL            string    `json:"url"` // the API resource of the recording, an absolute link
	At             time.Time `json:"at"`
}

// webhookTypes maps the hub's audit types to the webhook events they may
// become.
var webhookTypes = map[string][]string{
	"session.created": {SessionCreatedType},
	"host.connected":  {HostConnectedType},
	"consent.granted": {ConsentGrantedType, SessionStartedType},
	"consent.denied":  {ConsentDeniedType},
	"consent.timeout": {ConsentDeniedType},
	// The user's computer could not put the question (no window could
	// show): not the user's no, said as such.
	"consent.not_shown": {ConsentDeniedType},
	"consent.changed":   {ConsentRevokedType},
	"session.ended":     {SessionEndedType},
	"recording.ready":   {RecordingReadyType},
}

// outgoing is an event ready to be stored.
type outgoing struct {
	typ  string
	once bool // at most one per session
	data any
}

// auditDetail holds the fields of the audit details this package reads.
type auditDetail struct {
	Viewer    string   `json:"viewer"`
	Requested []string `json:"requested"`
	Granted   []string `json:"granted"`
	Hostname  string   `json:"hostname"`
	OS        string   `json:"os"`
	Change    string   `json:"change"`
	Notes     string   `json:"notes"`
	// recording.ready
	State          string `json:"state"`
	SizeBytes      int64  `json:"size_bytes"`
	DurationMS     int64  `json:"duration_ms"`
	Segments       int    `json:"segments"`
	FramesRelayed  int64  `json:"frames_relayed"`
	FramesWritten  int64  `json:"frames_written"`
	ManifestSHA256 string `json:"manifest_sha256"`
	// file.transfer, shell.command
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Direction string `json:"direction"`
	Command   string `json:"command"`
	// session.ended
	Cause string `json:"cause"`
}

// utc drops what JSON consumers need not see: the location and fractions.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// translate turns a hub event into the webhook events it means.
func (d *Dispatcher) translate(ctx context.Context, e signal.Event) ([]outgoing, error) {
	var det auditDetail
	if len(e.Detail) > 0 {
		if err := json.Unmarshal(e.Detail, &det); err != nil {
			return nil, fmt.Errorf("decode %s detail: %w", e.Type, err)
		}
	}
	// The host names what the user did; only revocations are events.
	// The host names what the user took back in words ("revoked file
	// transfer"): the permission is the one with those words.
	words, isRevoke := strings.CutPrefix(det.Change, "revoked ")
	var revoked string
	for _, p := range protocol.AllPermissions {
		if isRevoke && protocol.PermWords(p) == words {
			revoked = p
		}
	}
	if e.Type == "consent.changed" && revoked == "" {
		return nil, nil
	}
	sess, err := d.cfg.Store.SessionByID(ctx, e.Session)
	if err != nil {
		return nil, fmt.Errorf("look up session %s: %w", e.Session, err)
	}
	ref := SessionRef{SessionID: sess.ID, TicketID: sess.TicketID, TicketSystem: sess.TicketSystem, TicketURL: sess.TicketURL,
		TicketTitle: sess.TicketTitle, InitiatedBy: sess.InitiatedBy}
	if u, err := d.cfg.Store.UserByID(ctx, sess.CreatedBy); err == nil {
		ref.Technician = u.Username
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("look up technician of %s: %w", e.Session, err)
	}
	at := utc(e.At)
	switch e.Type {
	case SessionCreatedType:
		created := SessionCreated{SessionRef: ref, PermissionsRequested: nonNil(sess.Permissions), CreatedAt: utc(sess.CreatedAt)}
		if sess.CodeUsedAt.IsZero() {
			expires := utc(sess.CodeExpiresAt)
			created.CodeExpiresAt = &expires
		}
		return []outgoing{{SessionCreatedType, true, created}}, nil
	case HostConnectedType:
		return []outgoing{{HostConnectedType, true, HostConnected{ref, HostInfo{det.Hostname, det.OS}, at}}}, nil
	case "consent.granted":
		out := []outgoing{{ConsentGrantedType, false, ConsentGranted{ref, det.Viewer, nonNil(det.Requested), nonNil(det.Granted), at}}}
		if len(det.Granted) > 0 {
			out = append(out, outgoing{SessionStartedType, true, SessionStarted{ref, det.Viewer, at}})
		}
		return out, nil
	case "consent.denied", "consent.timeout", "consent.not_shown":
		reason := strings.TrimPrefix(e.Type, "consent.")
		return []outgoing{{ConsentDeniedType, false, ConsentDenied{ref, det.Viewer, nonNil(det.Requested), reason, at}}}, nil
	case "consent.changed":
		return []outgoing{{ConsentRevokedType, false, ConsentRevoked{ref, revoked, at}}}, nil
	case RecordingReadyType:
		return []outgoing{{RecordingReadyType, true, RecordingReady{ref, det.State, det.SizeBytes, det.DurationMS, det.Segments,
			det.FramesRelayed, det.FramesWritten, det.ManifestSHA256, d.link("/api/v1/recordings/" + sess.ID), at}}}, nil
	case SessionEndedType:
		ended, err := d.sessionEnded(ctx, sess, ref, at)
		if err != nil {
			return nil, err
		}
		ended.EndCause = det.Cause
		if det.Cause == "technician" || det.Cause == "admin" {
			ended.EndedBy = e.Actor
		}
		return []outgoing{{SessionEndedType, true, ended}}, nil
	}
	return nil, nil
}

// sessionEnded sums the session up from its audit trail.
func (d *Dispatcher) sessionEnded(ctx context.Context, sess *store.Session, ref SessionRef, at time.Time) (*SessionEnded, error) {
	events, err := d.cfg.Store.Events(ctx, sess.ID)
	if err != nil {
		return nil, fmt.Errorf("read the audit trail of %s: %w", sess.ID, err)
	}
	out := &SessionEnded{SessionRef: ref, CreatedAt: utc(sess.CreatedAt), EndedAt: at, EndReason: sess.EndReason,
		PermissionsGranted: []string{}, Viewers: []string{}, Joined: []string{}, FilesMoved: []FileMoved{}, ShellCommands: []ShellCommand{}}
	if !sess.EndedAt.IsZero() {
		out.EndedAt = utc(sess.EndedAt)
	}
	granted := map[string]bool{}
	for _, ev := range events {
		switch ev.Type {
		case "viewer.joined":
			if !slices.Contains(out.Joined, ev.Actor) {
				out.Joined = append(out.Joined, ev.Actor)
			}
			continue
		case "consent.granted", ClosingNotesAudit, "file.transfer", "shell.command":
		default:
			continue
		}
		var det auditDetail
		if err := json.Unmarshal([]byte(ev.Detail), &det); err != nil {
			continue // an entry this package cannot read adds nothing
		}
		switch ev.Type {
		case ClosingNotesAudit:
			out.ClosingNotes = det.Notes
			continue
		case "file.transfer":
			out.FilesMoved = append(out.FilesMoved, FileMoved{det.Name, det.Size, det.SHA256, det.Direction, ev.Actor, utc(ev.At)})
			continue
		case "shell.command":
			if len(out.ShellCommands) < maxShellCommands {
				out.ShellCommands = append(out.ShellCommands, ShellCommand{det.Command, ev.Actor, utc(ev.At)})
			}
			continue
		}
		for _, p := range det.Granted {
			granted[p] = true
		}
		if len(det.Granted) > 0 && det.Viewer != "" && !slices.Contains(out.Viewers, det.Viewer) {
			out.Viewers = append(out.Viewers, det.Viewer)
		}
		if out.StartedAt == nil && len(det.Granted) > 0 {
			t := utc(ev.At)
			out.StartedAt = &t
		}
	}
	for _, p := range protocol.AllPermissions {
		if granted[p] {
			out.PermissionsGranted = append(out.PermissionsGranted, p)
		}
	}
	if out.StartedAt != nil && out.EndedAt.After(*out.StartedAt) {
		out.DurationSeconds = int64(out.EndedAt.Sub(*out.StartedAt) / time.Second)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
