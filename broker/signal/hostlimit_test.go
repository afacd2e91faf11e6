package signal

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/internal/protocol"
)

// hostFor creates a session owned by a new technician and joins it as a
// host; it returns the session, its owner and the host's connection,
// welcomed.
func (b *testHub) hostFor(perms ...string) (*store.Session, *store.User, *websocket.Conn) {
	b.t.Helper()
	u, err := b.auth.CreateUser(context.Background(), "tech", "correct horse battery", "technician")
	if err != nil {
		b.t.Fatal(err)
	}
	sess, code, err := b.hub.CreateSession(context.Background(), u, u, Ticket{}, perms, 0)
	if err != nil {
		b.t.Fatal(err)
	}
	return sess, u, b.hostJoins(code)
}

// hostJoins joins a host with code and returns its connection, welcomed.
func (b *testHub) hostJoins(code string) *websocket.Conn {
	b.t.Helper()
	ws := b.dial("/ws/host", nil)
	b.send(ws, protocol.TypeHello, "", protocol.Hello{Version: protocol.Version, Role: protocol.RoleHost, Code: code})
	if env := readRaw(b.t, ws); env.Type != protocol.TypeWelcome {
		b.t.Fatalf("host got %q, want a welcome", env.Type)
	}
	return ws
}

// joinAs signs u in and joins sess as the console does, with its cookie.
func (b *testHub) joinAs(u *store.User, sess *store.Session) *websocket.Conn {
	b.t.Helper()
	token, _, _, err := b.auth.Login(context.Background(), "127.0.0.1", u.Username, "correct horse battery", "")
	if err != nil {
		b.t.Fatal(err)
	}
	viewer := b.dial("/ws/viewer", http.Header{"Origin": {b.origin()}, "Cookie": {(&http.Cookie{Name: auth.CookieName, Value: token}).String()}})
	b.send(viewer, protocol.TypeHello, "", protocol.Hello{Version: protocol.Version, Role: protocol.RoleViewer, Session: sess.ID})
	return viewer
}

func (b *testHub) send(ws *websocket.Conn, typ, session string, payload any) {
	b.t.Helper()
	msg, err := protocol.Encode(typ, session, payload)
	if err != nil {
		b.t.Fatal(err)
	}
	sendRaw(b.t, ws, string(msg))
}

// count is how many events of type typ the session's trail holds.
func (b *testHub) count(session, typ string) int {
	b.t.Helper()
	events, err := b.store.Events(context.Background(), session)
	if err != nil {
		b.t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// next reads ws until a message of type typ and decodes its payload.
func next[T any](t *testing.T, ws *websocket.Conn, typ string) T {
	t.Helper()
	for {
		env := readRaw(t, ws)
		if env.Type != typ {
			continue
		}
		var p T
		if err := json.Unmarshal(env.Payload, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// TestHostFlood: a host that floods the broker with changes of the
// user's will (here pause, resume, pause...) gets hostMessageBurst of them
// recorded and is told the rest were dropped; its end of the session is
// never dropped.
func TestHostFlood(t *testing.T) {
	b := newTestHub(t)
	sess, _, ws := b.hostFor()
	const flood = 300
	for i := range flood {
		b.send(ws, protocol.TypeConsentState, sess.ID, protocol.ConsentState{Paused: i%2 == 0, Change: "paused or resumed"})
	}
	if e := next[protocol.ErrorPayload](t, ws, protocol.TypeError); e.Code != protocol.CodeRateLimited {
		t.Fatalf("the flooding host was told %+v", e)
	}
	b.send(ws, protocol.TypeEnd, sess.ID, protocol.End{})
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := b.store.SessionByID(context.Background(), sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s.State == store.StateEnded {
			if s.EndReason != "The user ended the session." {
				t.Errorf("ended for %q", s.EndReason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host's end, sent after its flood, did not end the session: %s", s.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	changes := b.count(sess.ID, "consent.changed")
	// The burst, and what the rate allows over the flood's few
	// milliseconds to a second on a loaded machine.
	if changes < hostMessageBurst || changes > hostMessageBurst+5 {
		t.Errorf("%d changes of %d recorded, want the %d of the burst", changes, flood, hostMessageBurst)
	}
}

// TestSameWillAfterMoreAllowed: the host's state is applied when it is the
// same as one before it, if the user allowed more in between. Control
// allowed, taken back, allowed again and taken back again is taken back
// twice; a state repeated with nothing in between is recorded once.
func TestSameWillAfterMoreAllowed(t *testing.T) {
	b := newTestHub(t)
	sess, u, host := b.hostFor(protocol.PermView, protocol.PermControl)
	viewer := b.joinAs(u, sess)
	allow := func(perms ...string) protocol.ConsentRequest {
		t.Helper()
		req := next[protocol.ConsentRequest](t, host, protocol.TypeConsentRequest)
		b.send(host, protocol.TypeConsentAnswer, sess.ID, protocol.ConsentAnswer{ID: req.ID, Granted: perms, Reason: "granted"})
		return req
	}
	granted := func(want ...string) {
		t.Helper()
		for {
			p := next[protocol.Permissions](t, viewer, protocol.TypePermissions)
			if p.Pending {
				continue
			}
			if !slices.Equal(p.Granted, want) {
				t.Fatalf("the technician may %v, want %v", p.Granted, want)
			}
			return
		}
	}
	req := allow(protocol.PermView, protocol.PermControl)
	granted(protocol.PermView, protocol.PermControl)
	viewOnly := protocol.ConsentState{Grants: []protocol.Grant{{Viewer: req.Viewer.ID, Granted: []string{protocol.PermView}}}, Change: "revoked control"}
	b.send(host, protocol.TypeConsentState, sess.ID, viewOnly)
	granted(protocol.PermView)
	b.send(host, protocol.TypeConsentState, sess.ID, viewOnly)

	b.send(viewer, protocol.TypePermissionRequest, sess.ID, protocol.PermissionRequest{Permissions: []string{protocol.PermControl}})
	allow(protocol.PermControl)
	granted(protocol.PermView, protocol.PermControl)
	b.send(host, protocol.TypeConsentState, sess.ID, viewOnly)
	granted(protocol.PermView)

	if changes := b.count(sess.ID, "consent.changed"); changes != 2 {
		t.Errorf("%d changes recorded, want 2 (the same state twice in a row is one)", changes)
	}
}
