package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/signal"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/broker/webhook"
	"github.com/tether-support/tether/internal/rtc"
)

// testBroker is the REST API on a real SQLite store, authenticator and
// session hub, served over TLS by httptest.
type testBroker struct {
	t     *testing.T
	store *store.Store
	auth  *auth.Authenticator
	hub   *signal.Hub
	srv   *httptest.Server
	hooks *webhook.Dispatcher
}

func newTestBroker(t *testing.T) *testBroker {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "tether.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	authn, err := auth.New(auth.Config{Store: st, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	rtcAPI, err := rtc.NewAPI(rtc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rtcAPI.Close() })
	hooks, err := webhook.New(webhook.Config{Store: st, Logger: log, AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hooks.Close() })
	hub, err := signal.New(signal.Config{Store: st, Auth: authn, API: rtcAPI, Logger: log, Notify: hooks.Notify})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	a, err := New(Config{Store: st, Auth: authn, Hub: hub, Logger: log, PublicURL: "https://broker.example"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Register(mux)
	a.RegisterWebhooks(mux, hooks)
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return &testBroker{t: t, store: st, auth: authn, hub: hub, srv: srv, hooks: hooks}
}

// testPassword is every test account's password.
const testPassword = "correct horse battery"

// user makes an account and an API key of it with scopes (every scope its
// role holds when none are named).
func (b *testBroker) user(name, role string, scopes ...string) (*store.User, string) {
	b.t.Helper()
	u, err := b.auth.CreateUser(context.Background(), name, testPassword, role)
	if err != nil {
		b.t.Fatal(err)
	}
	if len(scopes) == 0 {
		for _, sc := range auth.AllScopes {
			if auth.RoleAllows(role, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	_, key, err := b.auth.CreateAPIKey(context.Background(), u, "test", scopes, time.Time{})
	if err != nil {
		b.t.Fatal(err)
	}
	return u, key
}

// call sends a JSON request with a bearer token and returns the status
// and the decoded answer.
func (b *testBroker) call(method, path, token string, body any) (int, map[string]any) {
	b.t.Helper()
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, b.srv.URL+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// A copy: tests call this from several goroutines at once.
	c := *b.srv.Client()
	c.Timeout = 10 * time.Second
	resp, err := c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &out)
	return resp.StatusCode, out
}
