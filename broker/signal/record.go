package signal

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/tether-support/tether/broker/record"
	"github.com/tether-support/tether/broker/store"
)

// ErrNotRecorded refuses a session whose archive cannot be written; its
// text is what the user and the technician read.
var ErrNotRecorded = errors.New("The session cannot start: the broker cannot record it, and recording is required. Ask your administrator to check the broker's recording storage.")

// startRecording starts the archive of a session that goes live. The
// relay's keyframe request and its viewers' bitrate are reached through
// keyframe and viewerBitrate, set once the relay exists.
func (h *Hub) startRecording(sess *store.Session, keyframe func(), viewerBitrate func() int) (*record.Session, error) {
	if h.cfg.Recorder == nil {
		return nil, nil
	}
	ctx := context.Background()
	technician := ""
	if u, err := h.cfg.Store.UserByID(ctx, sess.CreatedBy); err == nil {
		technician = u.Username
	}
	id := sess.ID
	rec, err := h.cfg.Recorder.Start(record.Info{
		Session: id, Ticket: sess.TicketID, Technician: technician,
		RequestKeyframe: keyframe, ViewerBitrate: viewerBitrate,
		OnFailure: func(err error) {
			h.log.Error("recording failed: ending the session", "session", id, "err", err)
			h.audit(id, "broker", "recording.failed", map[string]any{"error": err.Error()})
			go h.end(id, EndedRecordingFailed, "The session was ended because it could not be recorded, and recording is required. Ask your administrator to check the broker's recording storage.")
		},
		OnSealed: func(m *record.Manifest) { h.RecordingSealed(m) },
	})
	if err != nil {
		h.log.Error("cannot record session", "session", id, "err", err)
		h.counts.recordingsFailed.Add(1)
		return nil, ErrNotRecorded
	}
	if err := h.cfg.Store.CreateRecording(ctx, id, h.cfg.Now()); err != nil {
		h.log.Error("note recording", "session", id, "err", err)
	}
	// The trail so far (the session's creation) opens the archive.
	if events, err := h.cfg.Store.Events(ctx, id); err == nil {
		for _, e := range events {
			rec.EventAt(e.At, e.Type, e.Actor, []byte(e.Detail))
		}
	}
	h.recMu.Lock()
	h.recordings[id] = rec
	h.recMu.Unlock()
	return rec, nil
}

// recordEvent copies an audit event that happened at at into the
// session's archive.
func (h *Hub) recordEvent(session string, at time.Time, actor, typ string, detail []byte) {
	h.recMu.Lock()
	rec := h.recordings[session]
	h.recMu.Unlock()
	if rec != nil {
		rec.EventAt(at, typ, actor, detail)
	}
}

// finishRecording seals a session's archive on a goroutine the hub waits
// for at shutdown: the archive is finished after everyone left.
func (h *Hub) finishRecording(session, reason string) {
	h.recMu.Lock()
	rec := h.recordings[session]
	delete(h.recordings, session)
	h.recMu.Unlock()
	if rec == nil {
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		if err := rec.Finish(reason); err != nil {
			h.log.Error("finish recording", "session", session, "err", err)
		}
	}()
}

// RecordingSealed stores the summary of a finished archive and announces
// it (webhook recording.ready): one sealed as a session ends, one whose
// writing failed, or one a stopped broker left open and its next start
// sealed as incomplete.
func (h *Hub) RecordingSealed(m *record.Manifest) { h.recordingSealed(m, true) }

// recordingSealed is RecordingSealed; first is false when the store
// refused its summary before (which was logged then).
func (h *Hub) recordingSealed(m *record.Manifest, first bool) {
	// A failure its full disk kept out of the archive leaves it reading
	// "recording", and the next start seals it as incomplete: it failed,
	// as stored and announced when it did.
	if old, err := h.cfg.Store.RecordingBySession(context.Background(), m.Session); err == nil && old.State == record.StateFailed {
		// Its manifest, sealed again by the next start, is the one to
		// verify it against.
		if err := h.cfg.Store.SetRecordingManifest(context.Background(), m.Session, m.SHA256); err != nil {
			h.log.Error("store recording manifest", "session", m.Session, "err", err)
		}
		return
	}
	sum := RecordingSummary(m)
	if err := h.cfg.Store.UpdateRecording(context.Background(), sum); err != nil {
		// Its disk full (the recording failed for it, likely): the
		// recording would list as still recording. It is stored, and
		// announced, as soon as the store takes it.
		if first {
			h.log.Error("store recording summary: trying again every second", "session", m.Session, "err", err)
		}
		h.mu.Lock()
		h.unstored = append(h.unstored, m)
		h.mu.Unlock()
		return
	}
	detail := map[string]any{"state": m.State, "size_bytes": sum.SizeBytes, "duration_ms": sum.DurationMS,
		"segments": sum.Segments, "frames_relayed": m.Video.Relayed, "frames_written": m.Video.Written, "manifest_sha256": m.SHA256}
	data, _ := json.Marshal(detail)
	at := h.cfg.Now()
	if err := h.cfg.Store.AddEvent(context.Background(), &store.Event{Session: m.Session, At: at, Actor: "broker", Type: "recording.ready", Detail: string(data)}); err != nil {
		h.log.Error("audit", "session", m.Session, "type", "recording.ready", "err", err)
	}
	h.notify(m.Session, "broker", "recording.ready", at, data)
}

// storeRecordingSummaries stores (and announces) the summaries the store
// refused before.
func (h *Hub) storeRecordingSummaries() {
	h.mu.Lock()
	ms := h.unstored
	h.unstored = nil
	h.mu.Unlock()
	for _, m := range ms {
		h.recordingSealed(m, false) // queued again if refused again
	}
}

// RecordingSummary is what the database keeps of an archive's manifest.
func RecordingSummary(m *record.Manifest) *store.Recording {
	r := &store.Recording{Session: m.Session, State: m.State, StartedAt: m.StartedAt, EndedAt: m.EndedAt, Note: m.Note,
		FramesRelayed: m.Video.Relayed, FramesWritten: m.Video.Written, ManifestSHA256: m.SHA256}
	var events int64
	for _, n := range m.Counts {
		events += n
	}
	r.Events = events
	for _, p := range m.Parts {
		r.SizeBytes += p.Size
		switch p.Kind {
		case record.KindVideo:
			r.Segments++
			r.DurationMS = max(r.DurationMS, p.StartMS+p.DurationMS)
		case record.KindShell:
			r.Shells++
		}
	}
	r.Files = int(m.Counts["file.transfer"])
	r.Clipboard = int(m.Counts["clipboard"])
	if !m.EndedAt.IsZero() {
		r.DurationMS = max(r.DurationMS, m.EndedAt.Sub(m.StartedAt).Milliseconds())
	}
	return r
}
