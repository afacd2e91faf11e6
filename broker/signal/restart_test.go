package signal

import (
	"context"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/store"
)

// TestUsedCodeEndsAtRestart: the user's computer used the code, and the
// broker stopped before it recorded the host as joined. The next start
// ends the session as of the code's use: nothing else would (only unused
// codes expire), and it would read "waiting" for ever.
func TestUsedCodeEndsAtRestart(t *testing.T) {
	b := newTestHub(t)
	ctx := context.Background()
	u, err := b.auth.CreateUser(ctx, "tina", "correct horse battery", auth.RoleTechnician)
	if err != nil {
		t.Fatal(err)
	}
	now := b.clock.Now()
	sess := &store.Session{ID: "s_x", CodeHash: auth.HashToken("123456789"), CodeExpiresAt: now.Add(10 * time.Minute),
		CreatedBy: u.ID, State: store.StateWaiting, CreatedAt: now, Permissions: DefaultPermissions}
	if err := b.store.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.RedeemCode(ctx, sess.CodeHash, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// The broker restarts a day later.
	b.clock.Add(24 * time.Hour)
	if err := b.hub.EndInterrupted(ctx, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.EndExpiredCodes(ctx, EndedCodeExpired, expiredCodeReason, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := b.store.SessionByID(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := b.store.CountWaitingSessions(ctx)
	if got.State != store.StateEnded || n != 0 {
		t.Errorf("a day after a restart the session is %q (waiting sessions counted for the metrics: %d)", got.State, n)
	}
	if want := now.Add(time.Second).Truncate(time.Millisecond); !got.EndedAt.Equal(want) {
		t.Errorf("the session ended at %s, want when its code was used, %s", got.EndedAt, want)
	}
}
