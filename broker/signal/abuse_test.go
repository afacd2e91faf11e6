package signal

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/internal/protocol"
)

// TestViewerFloodIsBounded: a technician's connection that sends request
// after request and reads nothing holds up its own reading, not the
// broker's memory: each refusal is written before the next message is
// read, and what comes past the limit is refused.
func TestViewerFloodIsBounded(t *testing.T) {
	b := newTestHub(t)
	ctx := context.Background()
	u, err := b.auth.CreateUser(ctx, "tech", "correct horse battery", "technician")
	if err != nil {
		t.Fatal(err)
	}
	sess, _, err := b.hub.CreateSession(ctx, u, u, Ticket{}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	viewer := b.joinAs(u, sess) // no host: every request is refused
	next[protocol.Welcome](t, viewer, protocol.TypeWelcome)
	time.Sleep(300 * time.Millisecond)
	before := runtime.NumGoroutine()
	msg, _ := protocol.Encode(protocol.TypePermissionRequest, sess.ID, protocol.PermissionRequest{Permissions: []string{protocol.PermView}})
	stop := make(chan struct{})
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		for {
			select {
			case <-stop:
				return
			default:
			}
			viewer.SetWriteDeadline(time.Now().Add(time.Second))
			if viewer.WriteMessage(websocket.TextMessage, msg) != nil {
				return
			}
		}
	}()
	peak := 0
	for range 30 {
		time.Sleep(100 * time.Millisecond)
		peak = max(peak, runtime.NumGoroutine())
	}
	close(stop)
	<-flooded
	if peak > before+50 {
		t.Errorf("goroutines %d before a viewer's flood, %d during it", before, peak)
	}
}

// TestObserverDeclinedSessionGoesOn: a "no" to a supervisor who asked to
// watch, put to the user first, ends that supervisor's connection, not
// the session the technician is still waiting to be let into.
func TestObserverDeclinedSessionGoesOn(t *testing.T) {
	b := newTestHub(t)
	ctx := context.Background()
	tech, _ := b.auth.CreateUser(ctx, "tech", "correct horse battery", "technician")
	sup, _ := b.auth.CreateUser(ctx, "sup", "correct horse battery", "supervisor")
	sess, code, err := b.hub.CreateSession(ctx, tech, tech, Ticket{}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	tv := b.joinAs(tech, sess)
	sv := b.joinAs(sup, sess)
	next[protocol.Welcome](t, tv, protocol.TypeWelcome)
	next[protocol.Welcome](t, sv, protocol.TypeWelcome)
	time.Sleep(300 * time.Millisecond)
	host := b.hostJoins(code)
	asked := map[string]protocol.ConsentRequest{}
	for len(asked) < 2 {
		r := next[protocol.ConsentRequest](t, host, protocol.TypeConsentRequest)
		asked[r.Viewer.Role] = r
	}
	b.send(host, protocol.TypeConsentAnswer, sess.ID, protocol.ConsentAnswer{ID: asked["supervisor"].ID, Reason: "denied"})
	time.Sleep(500 * time.Millisecond)
	if s, _ := b.store.SessionByID(ctx, sess.ID); s.State == store.StateEnded {
		t.Fatalf("declining the observer ended the session (%q) while the technician's question was open", s.EndReason)
	}
	tq := asked["technician"]
	b.send(host, protocol.TypeConsentAnswer, sess.ID, protocol.ConsentAnswer{ID: tq.ID, Granted: tq.Permissions, Reason: "granted"})
	for p := next[protocol.Permissions](t, tv, protocol.TypePermissions); len(p.Granted) == 0; p = next[protocol.Permissions](t, tv, protocol.TypePermissions) {
		if !p.Pending {
			t.Fatalf("the technician was not let in after the observer was declined: %+v", p)
		}
	}
}

// TestQueuedQuestionWaitsItsTurn: the user's computer puts one question
// at a time, each with the whole timeout from when it shows; the broker
// does not give up on the second while the user answers the first.
func TestQueuedQuestionWaitsItsTurn(t *testing.T) {
	t.Parallel()
	b := newTestHub(t)
	b.hub.cfg.ConsentTimeout = 6 * time.Second
	ctx := context.Background()
	tech, _ := b.auth.CreateUser(ctx, "tech", "correct horse battery", "technician")
	sess, code, _ := b.hub.CreateSession(ctx, tech, tech, Ticket{}, nil, 0)
	v1 := b.joinAs(tech, sess)
	v2 := b.joinAs(tech, sess)
	next[protocol.Welcome](t, v1, protocol.TypeWelcome)
	next[protocol.Welcome](t, v2, protocol.TypeWelcome)
	time.Sleep(300 * time.Millisecond)
	host := b.hostJoins(code)
	q1 := next[protocol.ConsentRequest](t, host, protocol.TypeConsentRequest)
	q2 := next[protocol.ConsentRequest](t, host, protocol.TypeConsentRequest)
	// The first answered near its end, the second near the end of its
	// own time: 11.5 s after it was sent, past the 6 s and 5 s of grace
	// the broker gave it.
	time.Sleep(5800 * time.Millisecond)
	b.send(host, protocol.TypeConsentAnswer, sess.ID, protocol.ConsentAnswer{ID: q1.ID, Granted: q1.Permissions, Reason: "granted"})
	time.Sleep(5700 * time.Millisecond)
	b.send(host, protocol.TypeConsentAnswer, sess.ID, protocol.ConsentAnswer{ID: q2.ID, Granted: q2.Permissions, Reason: "granted"})
	time.Sleep(500 * time.Millisecond)
	if timeouts, granted := b.count(sess.ID, "consent.timeout"), b.count(sess.ID, "consent.granted"); timeouts != 0 || granted != 2 {
		t.Errorf("%d timeouts and %d grants in the trail; want the second question waited for, and granted", timeouts, granted)
	}
}

// TestConnectionsPerPersonBounded: one person's connections to a session
// are bounded (each is a question to the user and a peer connection on
// the broker); the one past the bound is told why.
func TestConnectionsPerPersonBounded(t *testing.T) {
	b := newTestHub(t)
	sess, u, _ := b.hostFor()
	for range maxConnectionsPerPerson {
		v := b.joinAs(u, sess)
		next[protocol.SDP](t, v, protocol.TypeOffer)
	}
	extra := b.joinAs(u, sess)
	next[protocol.Welcome](t, extra, protocol.TypeWelcome)
	_, e := readError(t, extra)
	if e.Code != protocol.CodeRateLimited || !strings.Contains(e.Message, "close one") {
		t.Errorf("connection %d: %+v, want it refused with why", maxConnectionsPerPerson+1, e)
	}
}
