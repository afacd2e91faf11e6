package record

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Recover finds archives a stopped broker left in the recording state and
// seals them as incomplete: their sealed parts are untouched and verify;
// what was written after the last seal stays on disk, not covered by the
// signature. It returns the manifests it sealed.
//
// replaced says whether the manifest (its SHA-256) of a session's archive
// is not the one its recording finished with, as the broker stored it: an
// earlier seal put back in its place. Such an archive is left as it is, for
// verify to report, not sealed again as if the broker had stopped while
// recording.
func (r *Recorder) Recover(replaced func(session, manifestSHA256 string) bool) ([]*Manifest, error) {
	entries, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("list recordings: %w", err)
	}
	var out []*Manifest
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !sessionIDPattern.MatchString(e.Name()) {
			continue
		}
		dir := filepath.Join(r.cfg.Dir, e.Name())
		m, _, err := ReadManifest(dir)
		if err != nil || m.State != StateRecording {
			continue
		}
		if replaced(e.Name(), m.SHA256) {
			r.log.Error("an archive's manifest is not the one its recording finished with: left as it is for verify to report", "session", e.Name())
			continue
		}
		// SealedAt stays the last seal's: the archive ends there, and
		// retention counts from it, however long the broker was down.
		m.State = StateIncomplete
		m.Note = fmt.Sprintf("The broker stopped while recording; the archive covers the session up to %s, its last seal.", m.SealedAt.Format(time.RFC3339))
		if err := writeManifest(dir, m, r.cfg.Key); err != nil {
			errs = append(errs, fmt.Errorf("seal archive %s: %w", e.Name(), err))
			continue
		}
		r.log.Warn("recording left incomplete by a broker stop", "session", m.Session)
		out = append(out, m)
	}
	return out, errors.Join(errs...)
}

// Expired returns the sessions whose archives ended (or were sealed last)
// before cutoff. Each manifest's Session is the archive's directory, which
// Delete takes: an archive kept under another session's name than its own
// (a copy restored beside the original) is deleted as the directory it
// is, not the original in its place.
func (r *Recorder) Expired(cutoff time.Time) ([]*Manifest, error) {
	entries, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("list recordings: %w", err)
	}
	var out []*Manifest
	for _, e := range entries {
		if !e.IsDir() || !sessionIDPattern.MatchString(e.Name()) {
			continue
		}
		m, _, err := ReadManifest(filepath.Join(r.cfg.Dir, e.Name()))
		if err != nil || m.State == StateRecording {
			continue
		}
		if m.SealedAt.Before(cutoff) {
			m.Session = e.Name()
			out = append(out, m)
		}
	}
	return out, nil
}

// Delete removes a session's archive. It returns once the removal is on
// disk: an archive that retention reports deleted must not come back
// after a power cut.
func (r *Recorder) Delete(session string) error {
	dir, err := r.ArchiveDir(session)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete archive %s: %w", session, err)
	}
	if err := syncDir(r.cfg.Dir); err != nil {
		return fmt.Errorf("delete archive %s: removed, but the removal may not outlast a power cut: %w", session, err)
	}
	return nil
}
