package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/tether-support/tether/broker/record"
	"github.com/tether-support/tether/broker/store"
)

// RecordingConfig is the recording policy.
type RecordingConfig struct {
	// Disabled turns recording off. By default every session is recorded
	// and a session that cannot be recorded does not run.
	Disabled bool
	// Dir holds the archives (default: recordings/ in the data directory).
	Dir string
	// RetentionDays deletes archives this many days after they were
	// sealed; 0 keeps them forever. Each deletion is audited.
	RetentionDays int
	// ShellInput records what technicians type in shells, not only what
	// the shells print.
	ShellInput bool
	// SegmentDuration is the length of a video segment (default 4 s).
	SegmentDuration time.Duration
	// EncryptionKeyFile, when set, names a file holding the key (32 bytes,
	// hex or base64, mode 0600) that encrypts archives at rest.
	EncryptionKeyFile string
}

// startRecorder loads (or creates) the signing key, seals archives a
// previous run left open as incomplete, and returns the recorder and
// those archives, which the hub announces once their sessions have ended
// (see signal.Hub.RecordingSealed).
func (b *Broker) startRecorder(ctx context.Context) (*record.Recorder, []*record.Manifest, error) {
	cfg := b.cfg.Recording
	if cfg.Disabled {
		return nil, nil, nil
	}
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(b.cfg.DataDir, "recordings")
	}
	key, err := record.LoadOrCreateKey(b.cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	var encKey []byte
	if cfg.EncryptionKeyFile != "" {
		if encKey, err = record.LoadEncryptionKey(cfg.EncryptionKeyFile); err != nil {
			return nil, nil, err
		}
	}
	b.recordingWarning = unreadableRecordings(b.cfg.Logger, cfg.Dir, cfg.EncryptionKeyFile, encKey)
	rec, err := record.New(record.Config{Dir: cfg.Dir, Key: key, Logger: b.cfg.Logger, Now: b.cfg.Now,
		SegmentDuration: cfg.SegmentDuration, ShellInput: cfg.ShellInput, EncryptionKey: encKey})
	if err != nil {
		return nil, nil, err
	}
	recovered, err := rec.Recover(func(session, manifest string) bool {
		r, err := b.store.RecordingBySession(ctx, session)
		return err == nil && r.ManifestSHA256 != "" && r.ManifestSHA256 != manifest
	})
	for _, m := range recovered {
		b.auditBroker(ctx, m.Session, "recording.incomplete", map[string]any{"note": m.Note})
	}
	if err != nil {
		// One archive that cannot be resealed must not keep the broker
		// down: it stays as it is, and verify reports it as recording.
		b.cfg.Logger.Error("recover recordings", "err", err)
	}
	return rec, recovered, nil
}

func (b *Broker) auditBroker(ctx context.Context, session, typ string, detail map[string]any) {
	data, _ := json.Marshal(detail)
	if err := b.store.AddEvent(ctx, &store.Event{Session: session, At: b.cfg.Now(), Actor: "broker", Type: typ, Detail: string(data)}); err != nil {
		b.cfg.Logger.Error("audit", "session", session, "type", typ, "err", err)
	}
}

// retentionLoop deletes expired archives at start and every hour until
// ctx ends.
func (b *Broker) retentionLoop(ctx context.Context) {
	if b.recorder == nil || b.cfg.Recording.RetentionDays <= 0 {
		return
	}
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		b.PruneRecordings(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// maxRetentionDays bounds -retention-days: a hundred years.
const maxRetentionDays = 36500

// PruneRecordings deletes the archives older than the retention period and
// returns the sessions whose archives it deleted.
func (b *Broker) PruneRecordings(ctx context.Context) []string {
	days := b.cfg.Recording.RetentionDays
	if b.recorder == nil || days <= 0 {
		return nil
	}
	expired, err := b.recorder.Expired(b.cfg.Now().AddDate(0, 0, -days))
	if err != nil {
		b.cfg.Logger.Error("retention", "err", err)
		return nil
	}
	var out []string
	for _, m := range expired {
		if err := b.recorder.Delete(m.Session); err != nil {
			b.cfg.Logger.Error("retention", "session", m.Session, "err", err)
			continue
		}
		if err := b.store.MarkRecordingDeleted(ctx, m.Session, b.cfg.Now()); err != nil {
			b.cfg.Logger.Error("retention", "session", m.Session, "err", err)
		}
		b.auditBroker(ctx, m.Session, "recording.deleted", map[string]any{"reason": "retention", "retention_days": days, "sealed_at": m.SealedAt})
		b.cfg.Logger.Info("recording deleted by retention", "session", m.Session, "retention_days", days)
		out = append(out, m.Session)
	}
	return out
}

// unreadableRecordings says, at start, when dir holds archives encrypted
// at rest that key (from keyFile; nil: none) cannot read: the broker was
// started without their key (the flag forgotten in a new service unit) or
// with another one. It runs and records as usual then, so the first sign
// would otherwise be a supervisor who cannot replay. It logs a warning
// and returns it for the terminal; "" when all is well.
func unreadableRecordings(log *slog.Logger, dir, keyFile string, key []byte) string {
	c, err := record.CheckEncryptionKey(dir, key)
	if err != nil || c.Unreadable == 0 {
		return ""
	}
	what, they, were, them := fmt.Sprintf("%d encrypted recordings", c.Unreadable), "they", "were", "them"
	if c.Unreadable == 1 {
		what, they, were, them = "an encrypted recording", "it", "was", "it"
	}
	msg := fmt.Sprintf("the broker was started without a recording encryption key, but %s holds %s: %s cannot be replayed, and new recordings are written unencrypted. Restart the broker with -recording-encryption-key and the key file %s %s encrypted with.",
		dir, what, they, they, were)
	if key != nil {
		msg = fmt.Sprintf("%s holds %s that the key in %s does not open: %s %s encrypted with another key, and cannot be replayed. Restart the broker with -recording-encryption-key and the key file %s %s encrypted with (if the key was changed on purpose, read %s with broker decrypt and the old key).",
			dir, what, keyFile, they, were, they, were, them)
	}
	log.Warn("encrypted recordings the broker cannot read", "unreadable", c.Unreadable, "encrypted", c.Encrypted, "dir", dir, "fix", "pass -recording-encryption-key with the key file they were encrypted with")
	return msg
}
