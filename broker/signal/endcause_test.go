package signal

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/internal/protocol"
)

// TestEndCauses: each way a live session ends says why in a word, in its
// trail (which the webhooks send on) and in the counts the metrics show.
func TestEndCauses(t *testing.T) {
	for _, tt := range []struct {
		cause string
		end   func(b *testHub, sess *store.Session, tech *store.User, host *websocket.Conn)
	}{
		{EndedByUser, func(b *testHub, sess *store.Session, _ *store.User, host *websocket.Conn) {
			b.send(host, protocol.TypeEnd, sess.ID, protocol.End{Reason: protocol.EndByUser})
		}},
		{EndedDisplayGone, func(b *testHub, sess *store.Session, _ *store.User, host *websocket.Conn) {
			b.send(host, protocol.TypeEnd, sess.ID, protocol.End{Reason: protocol.EndDisplayGone})
		}},
		{EndedHostLost, func(_ *testHub, _ *store.Session, _ *store.User, host *websocket.Conn) {
			host.Close()
		}},
		{EndedByTechnician, func(b *testHub, sess *store.Session, tech *store.User, _ *websocket.Conn) {
			if _, err := b.hub.EndSession(context.Background(), tech, sess.ID, ""); err != nil {
				t.Fatal(err)
			}
		}},
		{EndedByAdmin, func(b *testHub, sess *store.Session, _ *store.User, _ *websocket.Conn) {
			admin, err := b.auth.CreateUser(context.Background(), "root", "correct horse battery", auth.RoleAdmin)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.hub.EndSession(context.Background(), admin, sess.ID, ""); err != nil {
				t.Fatal(err)
			}
		}},
		{EndedByTechnician, func(b *testHub, sess *store.Session, tech *store.User, _ *websocket.Conn) {
			// From the technician's own connection, as the console's End does.
			viewer := b.joinAs(tech, sess)
			next[protocol.Welcome](t, viewer, protocol.TypeWelcome)
			b.send(viewer, protocol.TypeEnd, sess.ID, protocol.End{})
		}},
	} {
		t.Run(tt.cause, func(t *testing.T) {
			b := newTestHub(t)
			sess, tech, host := b.hostFor(protocol.PermView)
			tt.end(b, sess, tech, host)
			var detail struct{ Reason, Cause string }
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				events, err := b.store.Events(context.Background(), sess.ID)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range events {
					if e.Type == "session.ended" {
						json.Unmarshal([]byte(e.Detail), &detail)
					}
				}
				if detail.Reason != "" || time.Now().After(deadline) {
					break
				}
			}
			if detail.Cause != tt.cause {
				t.Fatalf("ended (%q) with the cause %q, want %q", detail.Reason, detail.Cause, tt.cause)
			}
			if got := b.hub.Stats().Ended; got[tt.cause] != 1 || len(got) != 1 {
				t.Fatalf("ended sessions counted %v, want one %s", got, tt.cause)
			}
		})
	}
}
