package signal

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
)

// testHub is a hub on a real SQLite store and authenticator, its
// WebSocket endpoints served by httptest, with a clock the test moves.
type testHub struct {
	t     *testing.T
	store *store.Store
	auth  *auth.Authenticator
	hub   *Hub
	srv   *httptest.Server
	clock *testClock
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestHub(t *testing.T) *testHub {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := &testClock{now: time.Now()}
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "tether.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	authn, err := auth.New(auth.Config{Store: st, Logger: log, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	api, err := rtc.NewAPI(rtc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	hub, err := New(Config{Store: st, Auth: authn, API: api, Logger: log, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/host", hub.ServeHost)
	mux.HandleFunc("GET /ws/viewer", hub.ServeViewer)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		hub.Close()
		srv.Close()
	})
	return &testHub{t: t, store: st, auth: authn, hub: hub, srv: srv, clock: clock}
}

// origin is the Origin the broker's own pages send.
func (b *testHub) origin() string {
	return "https://" + strings.TrimPrefix(b.srv.URL, "http://")
}

// dial opens a WebSocket to path with header; it fails the test unless
// the upgrade works.
func (b *testHub) dial(path string, header http.Header) *websocket.Conn {
	b.t.Helper()
	ws, resp, err := b.tryDial(path, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		b.t.Fatalf("dial %s: %v (HTTP %d)", path, err, status)
	}
	b.t.Cleanup(func() { ws.Close() })
	return ws
}

func (b *testHub) tryDial(path string, header http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	return d.Dial("ws"+strings.TrimPrefix(b.srv.URL, "http")+path, header)
}

// login signs a new account of role in and returns its console cookie.
func (b *testHub) login(name, role string) *http.Cookie {
	b.t.Helper()
	ctx := context.Background()
	if _, err := b.auth.CreateUser(ctx, name, "correct horse battery", role); err != nil {
		b.t.Fatal(err)
	}
	token, _, _, err := b.auth.Login(ctx, "127.0.0.1", name, "correct horse battery", "")
	if err != nil {
		b.t.Fatal(err)
	}
	return &http.Cookie{Name: auth.CookieName, Value: token}
}

// sendRaw writes one text message as it is.
func sendRaw(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// readRaw reads the next message as generic JSON, whatever its version.
func readRaw(t *testing.T, ws *websocket.Conn) (env struct {
	V       int             `json:"v"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("read %q: %v", data, err)
	}
	return env
}

// readError reads the next message and returns it as an error payload.
func readError(t *testing.T, ws *websocket.Conn) (v int, e protocol.ErrorPayload) {
	t.Helper()
	env := readRaw(t, ws)
	if env.Type != protocol.TypeError {
		t.Fatalf("got a %q message (%s), want an error", env.Type, env.Payload)
	}
	if err := json.Unmarshal(env.Payload, &e); err != nil {
		t.Fatal(err)
	}
	return env.V, e
}
