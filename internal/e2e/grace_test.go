package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/xtest"
)

// TestLookingAtWaitingSessionKeepsIt: a technician or supervisor who opens
// a session the user has not joined yet, and leaves, does not end it: the
// user's code still works once the time a technician has to come back
// has passed. Once the user has joined, the last technician to leave
// ends the session after that time, as before.
func TestLookingAtWaitingSessionKeepsIt(t *testing.T) {
	// Mostly waiting out the time a technician has to come back: it runs
	// beside the other tests that wait.
	t.Parallel()
	const grace = time.Second
	display := xtest.StartXvfb(t, 320, 240)
	b := startBrokerWith(t, func(c *server.Config) { c.ViewerGrace = grace })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := b.client(t)
	sess, err := c.CreateSession(ctx, "INC-PEEK")
	if err != nil {
		t.Fatal(err)
	}
	peek, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	peek.Close()
	time.Sleep(3 * grace)
	if got, err := c.Session(ctx, sess.ID); err != nil || got.State != "waiting" {
		t.Fatalf("after a look at the waiting session: %+v, %v; want it waiting for the user", got, err)
	}

	host := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatalf("the user joined with the code after the look, but: %v\nhost:\n%s", err, host.stderr.String())
	}
	j.Close()
	deadline := time.Now().Add(3*grace + 10*time.Second)
	for {
		got, err := c.Session(ctx, sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == "ended" {
			if got.EndReason != "The technician left the session." {
				t.Errorf("ended for %q", got.EndReason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the user is in and the last technician left %v ago; the session is still %s", 3*grace+10*time.Second, got.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
