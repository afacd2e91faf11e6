package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
)

// rawViewer opens /ws/viewer with the admin's API key and says hello.
func rawViewer(t *testing.T, b *broker, session string) *websocket.Conn {
	t.Helper()
	return rawViewerWith(t, b, b.admin.APIKey, session)
}

// rawViewerWith opens /ws/viewer with token and says hello.
func rawViewerWith(t *testing.T, b *broker, token, session string) *websocket.Conn {
	t.Helper()
	u, _ := dial.BrokerURL(b.URL())
	tlsCfg, err := dial.TLSConfig(b.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	ws, err := dial.WebSocket(context.Background(), u, "/ws/viewer", tlsCfg, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	hello, _ := protocol.Encode(protocol.TypeHello, session, protocol.Hello{Version: protocol.Version, Role: protocol.RoleViewer, Session: session})
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		t.Fatal(err)
	}
	if env := readType(t, ws, protocol.TypeWelcome); env.Session != session {
		t.Fatalf("welcome for %q", env.Session)
	}
	readType(t, ws, protocol.TypeOffer)
	return ws
}

// readType reads messages until one of type typ arrives.
func readType(t *testing.T, ws *websocket.Conn, typ string) protocol.Envelope {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %q: %v", typ, err)
		}
		env, err := protocol.Decode(data)
		if err != nil {
			t.Fatalf("broker sent an undecodable message: %v", err)
		}
		if env.Type == typ {
			return env
		}
	}
}

func errorCode(t *testing.T, env protocol.Envelope) string {
	t.Helper()
	var p protocol.ErrorPayload
	if err := protocol.DecodePayload(env, &p); err != nil {
		t.Fatal(err)
	}
	if p.Message == "" {
		t.Errorf("error %q has no message for people", p.Code)
	}
	return p.Code
}

// TestEndedSaysWhatIsOver: the broker's last word to a technician says
// whether the session is over for everyone or only their connection was
// cut off (its API key revoked) while the session goes on, in the message
// itself: a client need not guess it from how the connection closes.
func TestEndedSaysWhatIsOver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := startBroker(t)
	c := b.client(t)
	sess, err := c.CreateSession(ctx, "INC-END")
	if err != nil {
		t.Fatal(err)
	}
	api := b.URL() + "/api/v1"
	status, key := apiCall(t, b.httpClient(t), "POST", api+"/keys", b.admin.APIKey, `{"name":"join script","scopes":["sessions:read","sessions:join"]}`, nil)
	if status != 201 {
		t.Fatalf("create key: %d %v", status, key)
	}
	cut := rawViewerWith(t, b, key["key"].(string), sess.ID)
	stays := rawViewer(t, b, sess.ID)
	ended := func(ws *websocket.Conn) protocol.Ended {
		t.Helper()
		var e protocol.Ended
		if err := protocol.DecodePayload(readType(t, ws, protocol.TypeEnded), &e); err != nil {
			t.Fatal(err)
		}
		return e
	}

	if status, got := apiCall(t, b.httpClient(t), "DELETE", api+"/keys/"+key["id"].(string), b.admin.APIKey, "", nil); status != 200 {
		t.Fatalf("revoke: %d %v", status, got)
	}
	if e := ended(cut); e.Scope != protocol.ScopeConnection || e.Reason != "The API key you connected with was revoked." {
		t.Errorf("the connection whose key was revoked is told %+v; want scope %q and why", e, protocol.ScopeConnection)
	}
	if err := c.EndSession(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	if e := ended(stays); e.Scope != protocol.ScopeSession || e.Reason == "" {
		t.Errorf("the technician still there when the session ended is told %+v; want scope %q and why", e, protocol.ScopeSession)
	}
}

// TestKeyExpiryEndsItsConnections: a connection made with an API key that
// has a last moment is cut off at that moment, told why, and the key is
// refused from then on, with a reason of its own.
func TestKeyExpiryEndsItsConnections(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	sess, err := b.client(t).CreateSession(context.Background(), "INC-EXPIRY")
	if err != nil {
		t.Fatal(err)
	}
	last := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	body := fmt.Sprintf(`{"name":"join script","scopes":["sessions:read","sessions:join"],"expires_at":%q}`, last.Format(time.RFC3339))
	status, key := apiCall(t, b.httpClient(t), "POST", b.URL()+"/api/v1/keys", b.admin.APIKey, body, nil)
	if status != 201 {
		t.Fatalf("create key: %d %v", status, key)
	}
	ws := rawViewerWith(t, b, key["key"].(string), sess.ID)
	var e protocol.Ended
	if err := protocol.DecodePayload(readType(t, ws, protocol.TypeEnded), &e); err != nil {
		t.Fatal(err)
	}
	if at := time.Now(); at.Before(last) || at.After(last.Add(2*time.Second)) {
		t.Errorf("cut off at %v; the key's last moment was %v", at, last)
	}
	if e.Scope != protocol.ScopeConnection || e.Reason != "The API key you connected with has expired." {
		t.Errorf("the connection whose key expired is told %+v; want scope %q and why", e, protocol.ScopeConnection)
	}
	u, _ := dial.BrokerURL(b.URL())
	tlsCfg, err := dial.TLSConfig(b.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	_, err = dial.WebSocket(context.Background(), u, "/ws/viewer", tlsCfg, http.Header{"Authorization": {"Bearer " + key["key"].(string)}})
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("joining with the expired key: %v, want a refusal that says it expired", err)
	}
}

// TestSignalingBadInput: a malformed or oversized message fails that one
// message, and the connection goes on; an absurdly large one closes it
// with a clear close code.
func TestSignalingBadInput(t *testing.T) {
	b := startBroker(t)
	c := b.client(t)
	sess, err := c.CreateSession(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	ws := rawViewer(t, b, sess.ID)

	for _, tt := range []struct {
		name string
		msg  string
		want string
	}{
		{"not json", `{"v":1,"type":`, protocol.CodeBadMessage},
		{"wrong version", `{"v":7,"type":"answer","payload":{"sdp":"x"}}`, protocol.CodeVersion},
		{"bad payload", `{"v":1,"type":"answer","payload":{"sdp":42}}`, protocol.CodeBadMessage},
		{"oversized", `{"v":1,"type":"answer","payload":{"sdp":"` + strings.Repeat("a", 100<<10) + `"}}`, protocol.CodeTooLarge},
	} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(tt.msg)); err != nil {
			t.Fatalf("%s: write: %v", tt.name, err)
		}
		if got := errorCode(t, readType(t, ws, protocol.TypeError)); got != tt.want {
			t.Errorf("%s: error code %q, want %q", tt.name, got, tt.want)
		}
	}
	// Unknown types are skipped silently, and the connection still works:
	// ending the session through it is answered with "ended".
	for _, msg := range []string{`{"v":1,"type":"future.feature","payload":{}}`, `{"v":1,"type":"end","payload":{"reason":"done"}}`} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	env := readType(t, ws, protocol.TypeEnded)
	var ended protocol.Ended
	if err := protocol.DecodePayload(env, &ended); err != nil || !strings.Contains(ended.Reason, "done") {
		t.Fatalf("ended = %+v, %v", ended, err)
	}

	// Past the hard limit the broker closes with "message too big".
	sess2, err := c.CreateSession(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	ws2 := rawViewer(t, b, sess2.ID)
	ws2.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 2<<20)))
	ws2.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := ws2.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
			t.Fatalf("read after a 2 MiB message: %v, want close %d", err, websocket.CloseMessageTooBig)
		}
		break
	}
}

// TestViewerAuth: the viewer endpoint needs credentials and refuses pages
// of other origins.
func TestViewerAuth(t *testing.T) {
	b := startBroker(t)
	u, _ := dial.BrokerURL(b.URL())
	tlsCfg, _ := dial.TLSConfig(b.CAFile())
	for _, tt := range []struct {
		name   string
		header http.Header
		want   string
	}{
		{"no credentials", nil, "refused the credentials"},
		{"wrong key", http.Header{"Authorization": {"Bearer tth_wrong"}}, "refused the credentials"},
		{"foreign origin", http.Header{"Authorization": {"Bearer " + b.admin.APIKey}, "Origin": {"https://evil.example"}}, "forbidden"},
	} {
		_, err := dial.WebSocket(context.Background(), u, "/ws/viewer", tlsCfg, tt.header)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestHostJoinsWhileViewerConnects: a host that connects while a
// technician's connection is still being set up asks the user once, and the
// technician gets what the user allowed.
func TestHostJoinsWhileViewerConnects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := startBroker(t)
	sess, err := b.client(t).CreateSession(ctx, "INC-RACE", protocol.PermView, protocol.PermFiles)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := dial.BrokerURL(b.URL())
	tlsCfg, err := dial.TLSConfig(b.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	hostWS, err := dial.WebSocket(ctx, u, "/ws/host", tlsCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hostWS.Close()
	host := dial.NewConn(hostWS)
	viewer, err := dial.WebSocket(ctx, u, "/ws/viewer", tlsCfg, http.Header{"Authorization": {"Bearer " + b.admin.APIKey}})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	hello, _ := protocol.Encode(protocol.TypeHello, sess.ID, protocol.Hello{Version: protocol.Version, Role: protocol.RoleViewer, Session: sess.ID})
	if err := viewer.WriteMessage(websocket.TextMessage, hello); err != nil {
		t.Fatal(err)
	}
	readType(t, viewer, protocol.TypeWelcome)

	// The broker now sets up the technician's media; the host joins meanwhile.
	if err := host.Send(protocol.TypeHello, "", protocol.Hello{Version: protocol.Version, Role: protocol.RoleHost, Code: sess.Code,
		Host: &protocol.HostInfo{Hostname: "pc-1", OS: "linux", Width: 800, Height: 600}}); err != nil {
		t.Fatal(err)
	}
	asked := 0
	for {
		hostWS.SetReadDeadline(time.Now().Add(time.Second))
		env, err := host.Read()
		if err != nil {
			break // quiet for a second: every question has been put
		}
		if env.Type != protocol.TypeConsentRequest {
			continue
		}
		asked++
		var req protocol.ConsentRequest
		if err := protocol.DecodePayload(env, &req); err != nil {
			t.Fatal(err)
		}
		if err := host.Send(protocol.TypeConsentAnswer, sess.ID, protocol.ConsentAnswer{ID: req.ID, Granted: req.Permissions, Reason: "granted"}); err != nil {
			t.Fatal(err)
		}
	}
	if asked != 1 {
		t.Errorf("the user was asked %d times to let the technician in, want once", asked)
	}
	var p protocol.Permissions
	for !slices.Contains(p.Granted, protocol.PermFiles) {
		if err := protocol.DecodePayload(readType(t, viewer, protocol.TypePermissions), &p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQuestionNotShown: when the user's computer could not put a question
// (its dialog failed), the technician is told so and the trail does not
// say the user declined.
func TestQuestionNotShown(t *testing.T) {
	// Mostly waiting for the broker and the user's computer to answer: it
	// runs beside the other tests that wait.
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := startBroker(t)
	sess, err := b.client(t).CreateSession(ctx, "INC-DIALOG")
	if err != nil {
		t.Fatal(err)
	}
	viewer := rawViewer(t, b, sess.ID)
	u, _ := dial.BrokerURL(b.URL())
	tlsCfg, _ := dial.TLSConfig(b.CAFile())
	hostWS, err := dial.WebSocket(ctx, u, "/ws/host", tlsCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hostWS.Close()
	host := dial.NewConn(hostWS)
	if err := host.Send(protocol.TypeHello, "", protocol.Hello{Version: protocol.Version, Role: protocol.RoleHost, Code: sess.Code,
		Host: &protocol.HostInfo{Hostname: "pc-1", OS: "linux", Width: 800, Height: 600}}); err != nil {
		t.Fatal(err)
	}
	for {
		env, err := host.Read()
		if err != nil {
			t.Fatal(err)
		}
		if env.Type != protocol.TypeConsentRequest {
			continue
		}
		var req protocol.ConsentRequest
		if err := protocol.DecodePayload(env, &req); err != nil {
			t.Fatal(err)
		}
		if err := host.Send(protocol.TypeConsentAnswer, sess.ID, protocol.ConsentAnswer{ID: req.ID, Reason: "not_shown"}); err != nil {
			t.Fatal(err)
		}
		break
	}
	const want = "The question could not be shown to the user."
	for {
		var p protocol.Permissions
		if err := protocol.DecodePayload(readType(t, viewer, protocol.TypePermissions), &p); err != nil {
			t.Fatal(err)
		}
		if !p.Pending {
			if p.Message != want || len(p.Granted) != 0 {
				t.Fatalf("the technician was told %+v, want %q", p, want)
			}
			break
		}
	}
	type event struct {
		Actor, Type string
		Detail      map[string]any
	}
	var trail struct{ Events []event }
	getJSON(t, ctx, b, b.URL()+"/api/v1/sessions/"+sess.ID+"/events", &trail)
	for _, e := range trail.Events {
		if strings.HasPrefix(e.Type, "consent.") && e.Actor == "user" || e.Type == "consent.denied" {
			t.Errorf("the trail holds %s by %s: the user decided nothing", e.Type, e.Actor)
		}
		// Nor did the user turn the technician away: the session ends
		// for a cause of its own.
		if e.Type == "session.ended" && e.Detail["cause"] != "not_asked" {
			t.Errorf("the session ended with cause %v, want not_asked", e.Detail["cause"])
		}
	}
	if !slices.ContainsFunc(trail.Events, func(e event) bool { return e.Type == "consent.not_shown" }) {
		t.Errorf("no consent.not_shown in the trail: %+v", trail.Events)
	}
}
