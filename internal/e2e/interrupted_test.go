package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/internal/xtest"
)

// TestKilledSessionEndsWhenLastAlive: a broker killed mid-session (SIGKILL,
// as at a power loss) and started again later ends the session it left
// live as of the last moment it knew the session was going on, not as of
// the restart. The session runs quietly for over a minute first, with
// nothing for its audit trail, so only the broker's own note that it was
// alive can say how long it went on. The API and the session.ended webhook
// give the same time, and recording.ready announces the archive the kill
// left incomplete.
func TestKilledSessionEndsWhenLastAlive(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	bin := xtest.Build(t, "./broker")
	dataDir := t.TempDir()
	bp := runBrokerProc(t, bin, dataDir)
	setup, cancelSetup := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelSetup()
	_, sess, _, _ := bp.liveSession(t, setup, display, "INC-POWER")
	// Mostly waiting for the quiet minute to pass: the session is live
	// before the test waits for its turn beside the other tests that
	// wait, so that its minute passes while the tests before it run.
	quietSince := time.Now()
	t.Parallel()
	time.Sleep(time.Until(quietSince.Add(65 * time.Second)))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	t.Logf("the session ran quietly for %v", time.Since(quietSince).Round(time.Second))
	killedAt := time.Now()
	bp.cmd.Process.Signal(syscall.SIGKILL)
	bp.cmd.Wait()
	time.Sleep(3 * time.Second) // the broker comes back later

	restartedAt := time.Now()
	b, ts := restartWithTicketSystem(t, ctx, dataDir, "session.ended", "recording.ready")
	api := newAPIClient(t, b.URL(), b.CAFile(), b.admin.APIKey)
	var after struct {
		State     string    `json:"state"`
		EndReason string    `json:"end_reason"`
		EndedAt   time.Time `json:"ended_at"`
	}
	if code := api.call(t, "GET", "/api/v1/sessions/"+sess.ID, &after); code != 200 || after.State != "ended" || !strings.Contains(after.EndReason, "broker stopped") {
		t.Fatalf("after the restart the session is %d %+v", code, after)
	}
	t.Logf("killed at %s, restarted at %s; the session ended at %s", killedAt.Format(time.TimeOnly), restartedAt.Format(time.TimeOnly), after.EndedAt.Local().Format(time.TimeOnly))
	if after.EndedAt.After(killedAt) {
		t.Errorf("the session ended at %s, after the broker was killed (%s)", after.EndedAt, killedAt)
	}
	// The broker notes live sessions once a minute: the last note is less
	// than a minute before the kill, long after anything in the trail.
	if after.EndedAt.Before(killedAt.Add(-61 * time.Second)) {
		t.Errorf("the session ended at %s, more than a minute before the broker was killed (%s)", after.EndedAt, killedAt)
	}
	ev := ts.wait(t, sess.ID, "session.ended")["session.ended"]
	if got, want := ev.Data["ended_at"], after.EndedAt.UTC().Truncate(time.Second).Format(time.RFC3339); got != want {
		t.Errorf("session.ended says ended_at %v, the API %s", got, want)
	}
	// The archive the kill left open is sealed at the restart, incomplete,
	// and ready like any other.
	rec := ts.wait(t, sess.ID, "recording.ready")["recording.ready"].Data
	if rec["state"] != "incomplete" || rec["url"] != b.URL()+"/api/v1/recordings/"+sess.ID {
		t.Errorf("recording.ready %v, want state incomplete and the recording's link", rec)
	}
	// With the hash of the manifest it was sealed with, which the broker
	// verifies it against.
	manifest, err := os.ReadFile(filepath.Join(dataDir, "recordings", sess.ID, "manifest.json"))
	if sum := sha256.Sum256(manifest); err != nil || rec["manifest_sha256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("recording.ready says manifest_sha256 %v; the archive's manifest is %x (%v)", rec["manifest_sha256"], sum, err)
	}
	if status, out := apiCall(t, b.httpClient(t), "POST", b.URL()+"/api/v1/recordings/"+sess.ID+"/verify", b.admin.APIKey, "", nil); status != 200 || out["ok"] != true {
		t.Errorf("verify the recovered archive: %d %v", status, out)
	}
}

// restartWithTicketSystem starts a broker in process on the data of one
// that stopped, with a ticket system subscribed to events. The ticket
// system listens on this machine, which only a broker told so delivers
// to; its endpoint goes in before the start, so that it hears what the
// broker does as it starts.
func restartWithTicketSystem(t *testing.T, ctx context.Context, dataDir string, events ...string) (*broker, *ticketSystem) {
	t.Helper()
	ts := newTicketSystem(t)
	ts.secret = "whsec_restarted"
	st, err := store.OpenSQLite(ctx, filepath.Join(dataDir, "tether.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = st.CreateWebhookEndpoint(ctx, &store.WebhookEndpoint{ID: "wh_restarted", URL: ts.URL + "/tether", Secret: ts.secret,
		Events: events, Enabled: true, CreatedBy: 1, CreatedAt: time.Now()})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := startBrokerWith(t, func(c *server.Config) {
		c.DataDir = dataDir
		c.Webhooks.AllowLoopback = true
		c.Webhooks.PollInterval = 50 * time.Millisecond
	})
	return b, ts
}

// TestHostLostConnectionSaysWhatToDo: when the user's network drops the
// session (here the broker goes away at once), the host's last line tells
// them in plain words that nothing is shared any more and what to do, not
// what the network library saw.
func TestHostLostConnectionSaysWhatToDo(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bp := runBrokerProc(t, xtest.Build(t, "./broker"), t.TempDir())
	_, _, _, host := bp.liveSession(t, ctx, display, "INC-NET")
	bp.cmd.Process.Signal(syscall.SIGKILL)
	bp.cmd.Wait()
	if code := host.wait(t, 30*time.Second); code != 1 {
		t.Fatalf("host exit code %d; stderr:\n%s", code, host.stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(host.stderr.String()), "\n")
	want := "Tether: The connection to the support server was lost, so the session is over and nothing is shared any more. Check this computer's network connection, then ask your technician for a new code."
	if last := lines[len(lines)-1]; last != want {
		t.Fatalf("last stderr line %q, want %q", last, want)
	}
}
