package api

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/record"
	"github.com/tether-support/tether/broker/store"
)

// maxPlayerEvents bounds the events one request returns to the player.
const maxPlayerEvents = 200_000

// Whole-archive work (download, verify) reads every byte of an archive: each
// person may start heavyArchiveBurst of them at once, then one per
// heavyArchiveEvery.
const (
	heavyArchiveBurst = 10
	heavyArchiveEvery = 6 * time.Second
)

// registerRecordings adds the recordings endpoints.
func (a *API) registerRecordings(mux *http.ServeMux) {
	heavy := &userLimiter{every: heavyArchiveEvery, burst: heavyArchiveBurst, byUser: map[int64]*rate.Limiter{}}
	played := &playLog{last: map[playKey]time.Time{}}
	mux.HandleFunc("GET /api/v1/recordings/public-key", a.recordingKey)
	mux.HandleFunc("GET /api/v1/recordings", a.authed(auth.ScopeRecordingsRead, a.listRecordings))
	mux.HandleFunc("GET /api/v1/recordings/{id}", a.authed(auth.ScopeRecordingsRead, played.audit(a, a.getRecording)))
	mux.HandleFunc("GET /api/v1/recordings/{id}/events", a.authed(auth.ScopeRecordingsRead, played.audit(a, a.recordingEvents)))
	mux.HandleFunc("GET /api/v1/recordings/{id}/parts/{name}", a.authed(auth.ScopeRecordingsRead, played.audit(a, a.recordingPart)))
	mux.HandleFunc("GET /api/v1/recordings/{id}/download", a.authed(auth.ScopeRecordingsRead, heavy.limit(a.downloadRecording)))
	mux.HandleFunc("POST /api/v1/recordings/{id}/verify", a.authed(auth.ScopeRecordingsRead, heavy.limit(a.verifyRecording)))
}

// userLimiter rate-limits a handler per person.
type userLimiter struct {
	every  time.Duration
	burst  int
	mu     sync.Mutex
	byUser map[int64]*rate.Limiter
}

func (l *userLimiter) limit(h func(http.ResponseWriter, *http.Request, *auth.Principal)) func(http.ResponseWriter, *http.Request, *auth.Principal) {
	return func(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
		l.mu.Lock()
		lim := l.byUser[p.User.ID]
		if lim == nil {
			if len(l.byUser) > 10000 {
				l.byUser = map[int64]*rate.Limiter{}
			}
			lim = rate.NewLimiter(rate.Every(l.every), l.burst)
			l.byUser[p.User.ID] = lim
		}
		l.mu.Unlock()
		if !lim.Allow() {
			w.Header().Set("Retry-After", strconv.Itoa(int(l.every/time.Second)))
			writeError(w, http.StatusTooManyRequests, "rate_limited", "Too many downloads or verifications in a short time. Wait a few seconds and try again.")
			return
		}
		h(w, r, p)
	}
}

// playAgain is how long one person's reads of a recording count as one
// playback: the player reads the summary, the events and each part, many
// times over while seeking, some of them at once.
const playAgain = 10 * time.Minute

type playKey struct {
	user    int64
	session string
}

// playLog writes a playback into the session's trail for whoever reads a
// recording: its summary (the player opens it first), its events or one of
// its parts (a terminal transcript, a video segment), once for reads that
// follow each other closer than playAgain. Reading parts through the API
// without opening the summary left no trace.
type playLog struct {
	mu   sync.Mutex
	last map[playKey]time.Time
}

// audit runs h and, when it served the recording and this person's last
// read of it is longer ago than playAgain, audits a playback.
func (l *playLog) audit(a *API, h func(http.ResponseWriter, *http.Request, *auth.Principal)) func(http.ResponseWriter, *http.Request, *auth.Principal) {
	return func(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h(sw, r, p)
		if sw.status >= 300 && sw.status != http.StatusPartialContent {
			return
		}
		key, now := playKey{p.User.ID, r.PathValue("id")}, a.cfg.Now()
		l.mu.Lock()
		if len(l.last) > 10000 {
			l.last = map[playKey]time.Time{}
		}
		seen, ok := l.last[key]
		fresh := !ok || now.Sub(seen) >= playAgain
		l.last[key] = now
		l.mu.Unlock()
		if fresh {
			detail := map[string]any{"role": p.User.Role}
			if name := r.PathValue("name"); name != "" {
				detail["part"] = name
			} else if strings.HasSuffix(r.URL.Path, "/events") {
				detail["part"] = record.EventsFile
			}
			a.auditAccess(r, p, key.session, "recording.played", detail)
		}
	}
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

type recordingJSON struct {
	Session       string          `json:"session"`
	Ticket        string          `json:"ticket"`
	Technician    string          `json:"technician"`
	Host          json.RawMessage `json:"host,omitempty"`
	State         string          `json:"state"`
	StartedAt     time.Time       `json:"started_at"`
	EndedAt       *time.Time      `json:"ended_at"`
	DurationMS    int64           `json:"duration_ms"`
	SizeBytes     int64           `json:"size_bytes"`
	Segments      int             `json:"segments"`
	Events        int64           `json:"events"`
	Shells        int             `json:"shells"`
	Files         int             `json:"files"`
	Clipboard     int             `json:"clipboard"`
	FramesRelayed int64           `json:"frames_relayed"`
	FramesWritten int64           `json:"frames_written"`
	Note          string          `json:"note,omitempty"`
	Deletion      *deletionJSON   `json:"deletion,omitempty"`
}

// deletionJSON says when and why a deleted recording was deleted, as far
// as the broker knows: the supervisor who follows a ticket's link to it
// learns it is gone on purpose, not lost.
type deletionJSON struct {
	At            *time.Time `json:"at,omitempty"`
	Reason        string     `json:"reason,omitempty"`         // retention, or as the trail says
	RetentionDays int        `json:"retention_days,omitempty"` // for retention: how long the broker kept it
	By            string     `json:"by,omitempty"`             // the person who deleted it, when not the broker
	Message       string     `json:"message"`
}

// deletionOf reads a deleted recording's deletion from its row and its
// session's trail; nil when the recording is not deleted.
func deletionOf(r *store.Recording) *deletionJSON {
	if r.State != "deleted" {
		return nil
	}
	d := &deletionJSON{By: r.DeletedBy}
	if d.By == "broker" {
		d.By = ""
	}
	if !r.DeletedAt.IsZero() {
		at := r.DeletedAt
		d.At = &at
	}
	var detail struct {
		Reason        string `json:"reason"`
		RetentionDays int    `json:"retention_days"`
	}
	if json.Unmarshal([]byte(r.DeletionJSON), &detail) == nil {
		d.Reason, d.RetentionDays = detail.Reason, detail.RetentionDays
	}
	when := ""
	if d.At != nil {
		when = " on " + d.At.UTC().Format("2 January 2006 at 15:04 UTC")
	}
	switch {
	case d.Reason == "retention" && d.RetentionDays > 0:
		days := fmt.Sprintf("%d days", d.RetentionDays)
		if d.RetentionDays == 1 {
			days = "1 day"
		}
		d.Message = fmt.Sprintf("This recording was deleted%s, because this broker keeps recordings for %s after they end.", when, days)
	case d.By != "":
		d.Message = fmt.Sprintf("This recording was deleted by %s%s.", d.By, when)
	default:
		d.Message = "This recording was deleted" + when + "."
	}
	return d
}

func toRecordingJSON(r *store.Recording) recordingJSON {
	out := recordingJSON{Session: r.Session, Ticket: r.TicketID, Technician: r.Technician, State: r.State, StartedAt: r.StartedAt,
		DurationMS: r.DurationMS, SizeBytes: r.SizeBytes, Segments: r.Segments, Events: r.Events, Shells: r.Shells, Files: r.Files,
		Clipboard: r.Clipboard, FramesRelayed: r.FramesRelayed, FramesWritten: r.FramesWritten, Note: r.Note, Deletion: deletionOf(r)}
	if r.HostJSON != "" && json.Valid([]byte(r.HostJSON)) {
		out.Host = json.RawMessage(r.HostJSON)
	}
	if !r.EndedAt.IsZero() {
		t := r.EndedAt
		out.EndedAt = &t
	}
	return out
}

// recordingKey serves the public key archives are signed with: auditors
// verify offline against it.
func (a *API) recordingKey(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Recorder == nil {
		writeError(w, http.StatusNotFound, "recording_disabled", "This broker does not record sessions.")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="tether-recording-key.pub.pem"`)
	w.Write(record.PublicKeyPEM(a.cfg.Recorder.PublicKey()))
}

func (a *API) listRecordings(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	q := r.URL.Query()
	errs := checkQuery(q, "ticket", "technician", "host", "from", "to", "has", "after", "limit")
	f := store.RecordingFilter{Ticket: q.Get("ticket"), Technician: q.Get("technician"), Host: q.Get("host")}
	if p.User.Role == auth.RoleTechnician {
		f.User = p.User.ID
	}
	for _, field := range []struct {
		name string
		into *time.Time
		end  bool
	}{{"from", &f.From, false}, {"to", &f.To, true}} {
		v := q.Get(field.name)
		if v == "" {
			continue
		}
		t, err := parseDate(v, field.end)
		if err != nil {
			errs = append(errs, fieldError{field.name, "invalid_date", fmt.Sprintf("%s must be a date (2026-11-29) or an RFC 3339 time.", field.name)})
		}
		*field.into = t
	}
	badHas := false
	for _, h := range strings.Split(q.Get("has"), ",") {
		switch strings.TrimSpace(h) {
		case "":
		case "shell":
			f.Shell = true
		case "files":
			f.Files = true
		default:
			badHas = true
		}
	}
	if badHas {
		errs = append(errs, fieldError{"has", "invalid_filter", "has takes shell and files, separated by commas."})
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			errs = append(errs, fieldError{"limit", "invalid_limit", "limit must be between 1 and 500."})
		}
		f.Limit = n
	}
	if id := q.Get("after"); id != "" {
		if _, ok := a.visibleSession(r, p, id); ok {
			f.After, _ = a.cfg.Store.RecordingBySession(r.Context(), id)
		}
		if f.After == nil {
			errs = append(errs, fieldError{"after", "invalid_after", "after must be the session id of a recording you can see: the last of the page before."})
		}
	}
	if len(errs) > 0 {
		writeFieldErrors(w, errs)
		return
	}
	list, more, err := a.cfg.Store.SearchRecordings(r.Context(), f)
	if err != nil {
		a.log.ErrorContext(r.Context(), "search recordings", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "Recordings could not be searched; try again.")
		return
	}
	out := struct {
		Recordings []recordingJSON `json:"recordings"`
		More       bool            `json:"more"` // more match than the limit: the oldest are left out
	}{Recordings: []recordingJSON{}, More: more}
	for _, rec := range list {
		out.Recordings = append(out.Recordings, toRecordingJSON(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

// parseDate takes a day (the whole day when end) or an RFC 3339 time.
func parseDate(v string, end bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return t, err
	}
	if end {
		t = t.Add(24 * time.Hour)
	}
	return t, nil
}

// recording finds a recording the principal may see, answering 404 for
// missing and forbidden alike.
func (a *API) recording(w http.ResponseWriter, r *http.Request, p *auth.Principal) (*store.Recording, string, bool) {
	notFound := func() (*store.Recording, string, bool) {
		writeError(w, http.StatusNotFound, "not_found", "No such recording, or it is not yours.")
		return nil, "", false
	}
	if a.cfg.Recorder == nil {
		writeError(w, http.StatusNotFound, "recording_disabled", "This broker does not record sessions.")
		return nil, "", false
	}
	id := r.PathValue("id")
	if _, ok := a.visibleSession(r, p, id); !ok {
		return notFound()
	}
	rec, err := a.cfg.Store.RecordingBySession(r.Context(), id)
	if err != nil {
		return notFound()
	}
	if d := deletionOf(rec); d != nil {
		writeError(w, http.StatusGone, "recording_deleted", d.Message)
		return nil, "", false
	}
	dir, err := a.cfg.Recorder.ArchiveDir(id)
	if err != nil {
		return notFound()
	}
	// The broker deletes an archive only for retention, and notes it; one
	// gone otherwise was removed by hand, and said only that its manifest
	// could not be read.
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		writeError(w, http.StatusGone, "recording_missing", "This recording's files are no longer on the broker: someone removed them from its recordings folder outside Tether, so it cannot be played or downloaded. Ask your administrator whether a backup holds them.")
		return nil, "", false
	}
	return rec, dir, true
}

// auditAccess writes a playback or download into the session's trail.
func (a *API) auditAccess(r *http.Request, p *auth.Principal, session, typ string, detail map[string]any) {
	data, _ := json.Marshal(detail)
	if err := a.cfg.Store.AddEvent(r.Context(), &store.Event{Session: session, At: a.cfg.Now(), Actor: p.User.Username, Type: typ, Detail: string(data)}); err != nil {
		a.log.ErrorContext(r.Context(), "audit recording access", "session", session, "err", err)
	}
}

// getRecording returns the summary and the manifest; opening a recording
// in the player is audited as a playback (by playLog).
func (a *API) getRecording(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	rec, dir, ok := a.recording(w, r, p)
	if !ok {
		return
	}
	m, _, err := record.ReadManifest(dir)
	if err != nil {
		a.log.ErrorContext(r.Context(), "read manifest", "session", rec.Session, "err", err)
		writeError(w, http.StatusInternalServerError, "archive_unreadable", "The archive's manifest cannot be read; run verify.")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		recordingJSON
		Manifest *record.Manifest `json:"manifest"`
	}{toRecordingJSON(rec), m})
}

// writeUnreadable says why a part of an archive cannot be read: its key is
// missing (the broker was started without -recording-encryption-key), or
// otherwise.
func writeUnreadable(w http.ResponseWriter, err error, otherwise string) {
	if errors.Is(err, record.ErrNoKey) {
		writeError(w, http.StatusInternalServerError, "archive_unreadable", "This archive is encrypted, and the broker was started without its key: start it with -recording-encryption-key.")
		return
	}
	writeError(w, http.StatusInternalServerError, "archive_unreadable", otherwise)
}

// recordingEvents returns the sealed lines of the event log: lines after
// the last seal are not covered by the signature (anyone who can write the
// recordings folder can append lines that chain), so the player does not
// show them; verify names them.
func (a *API) recordingEvents(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	rec, dir, ok := a.recording(w, r, p)
	if !ok {
		return
	}
	m, _, err := record.ReadManifest(dir)
	var part io.ReadSeekCloser
	if err == nil {
		part, err = a.cfg.Recorder.OpenPart(rec.Session, m, record.EventsFile)
	}
	if err != nil {
		a.log.ErrorContext(r.Context(), "read events", "session", rec.Session, "err", err)
		writeUnreadable(w, err, "The archive's events cannot be read; run verify.")
		return
	}
	defer part.Close()
	events, err := record.ReadEvents(part, maxPlayerEvents)
	out := struct {
		Events   []record.Event `json:"events"`
		Complete bool           `json:"complete"`
		Error    string         `json:"error,omitempty"`
	}{Events: events, Complete: err == nil && len(events) < maxPlayerEvents}
	if err != nil {
		out.Error = err.Error()
	}
	if out.Events == nil {
		out.Events = []record.Event{}
	}
	writeJSON(w, http.StatusOK, out)
}

// recordingPart serves one file the manifest lists (video with ranges, for
// seeking), up to its sealed length: only what the signature covers is
// played. Only listed parts are served: nothing else in the directory.
func (a *API) recordingPart(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	_, dir, ok := a.recording(w, r, p)
	if !ok {
		return
	}
	name := r.PathValue("name")
	m, _, err := record.ReadManifest(dir)
	if err != nil || !slices.ContainsFunc(m.Parts, func(part record.Part) bool { return part.Name == name }) {
		writeError(w, http.StatusNotFound, "not_found", "The archive has no such part.")
		return
	}
	st, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "The part is missing from the archive; run verify.")
		return
	}
	part, err := a.cfg.Recorder.OpenPart(r.PathValue("id"), m, name)
	if err != nil {
		a.log.ErrorContext(r.Context(), "read part", "part", name, "err", err)
		writeUnreadable(w, err, "The part cannot be read; run verify.")
		return
	}
	defer part.Close()
	switch {
	case strings.HasSuffix(name, ".webm"):
		w.Header().Set("Content-Type", "video/webm")
	case strings.HasSuffix(name, ".cast"):
		w.Header().Set("Content-Type", "application/x-asciicast")
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Header().Set("Cache-Control", "private, no-store")
	http.ServeContent(w, r, name, st.ModTime(), part)
}

// downloadRecording sends the whole archive as a zip, for offline
// verification; every download is audited (a HEAD sends nothing, and is
// not).
func (a *API) downloadRecording(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	rec, dir, ok := a.recording(w, r, p)
	if !ok {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "archive_unreadable", "The archive cannot be read.")
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Cache-Control", "private, no-store") // the whole session, kept by no cache
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="tether-%s.zip"`, rec.Session))
	if r.Method == http.MethodHead {
		return // nothing of the archive leaves: no download to audit, nothing to read
	}
	a.auditAccess(r, p, rec.Session, "recording.downloaded", map[string]any{"role": p.User.Role})
	zw := zip.NewWriter(w)
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".new") {
			continue
		}
		if err := addToZip(zw, rec.Session, filepath.Join(dir, e.Name())); err != nil {
			a.log.ErrorContext(r.Context(), "download recording", "session", rec.Session, "err", err)
			return // the client sees a broken zip, not a silently short one
		}
	}
	zw.Close()
}

func addToZip(zw *zip.Writer, prefix, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	// Stored, not compressed: video does not compress, and the bytes stay
	// the ones the manifest hashes. Each entry is dated when the recording
	// last wrote the part (without a date, zip tools show 1980).
	out, err := zw.CreateHeader(&zip.FileHeader{Name: prefix + "/" + filepath.Base(path), Method: zip.Store, Modified: st.ModTime()})
	if err != nil {
		return err
	}
	_, err = io.Copy(out, f)
	return err
}

// verifyRecording checks the archive against this broker's key.
func (a *API) verifyRecording(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	rec, _, ok := a.recording(w, r, p)
	if !ok {
		return
	}
	rep, err := a.cfg.Recorder.Verify(rec.Session, rec.ManifestSHA256)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			writeError(w, http.StatusNotFound, "not_found", "The archive is missing.")
			return
		}
		writeError(w, http.StatusInternalServerError, "verify_failed", "The archive could not be read: "+err.Error())
		return
	}
	a.auditAccess(r, p, rec.Session, "recording.verified", map[string]any{"ok": rep.OK(), "problems": len(rep.Problems)})
	if rep.Problems == nil {
		rep.Problems = []record.Problem{}
	}
	if rep.Warnings == nil {
		rep.Warnings = []record.Problem{}
	}
	writeJSON(w, http.StatusOK, struct {
		OK bool `json:"ok"`
		*record.Report
	}{rep.OK(), rep})
}
