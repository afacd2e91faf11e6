package webhook

import (
	"encoding/json"
	"testing"
)

// TestRecordingReady: the hub's recording.ready entry becomes the
// documented event, once per session, with the archive's figures.
func TestRecordingReady(t *testing.T) {
	e := newEnv(t, nil)
	e.d.SetPublicURL("https://support.example.com:8443")
	rcv := newReceiver(t, nil)
	e.endpoint(t, rcv.URL, RecordingReadyType)
	detail := map[string]any{"state": "complete", "size_bytes": 123456, "duration_ms": 61000, "segments": 16, "frames_relayed": 1800, "frames_written": 1800,
		"manifest_sha256": "5f0c6e1b9a0d4c3e2f1a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e"}
	e.audit(t, "session.ended", "broker", map[string]any{"reason": "done"})
	e.audit(t, "recording.ready", "broker", detail)
	e.audit(t, "recording.ready", "broker", detail)
	waitFor(t, "recording.ready", func() bool { return len(rcv.requests()) >= 1 })
	var env struct {
		Type string
		Data RecordingReady
	}
	if err := json.Unmarshal(rcv.requests()[0].body, &env); err != nil {
		t.Fatal(err)
	}
	d := env.Data
	if env.Type != RecordingReadyType || d.SessionID != e.sess.ID || d.State != "complete" || d.SizeBytes != 123456 || d.DurationMS != 61000 ||
		d.Segments != 16 || d.FramesRelayed != 1800 || d.FramesWritten != 1800 ||
		d.ManifestSHA256 != "5f0c6e1b9a0d4c3e2f1a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e" || d.URL != "https://support.example.com:8443/api/v1/recordings/"+e.sess.ID {
		t.Errorf("recording.ready %+v", env)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("%d deliveries, want one per session", n)
	}
}
