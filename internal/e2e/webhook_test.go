package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// ticketSystem is a fake ticket system's webhook receiver: it checks each
// request's signature as a receiver would, from the documented scheme (one
// of the v1 signatures must match).
type ticketSystem struct {
	*httptest.Server
	t      *testing.T
	mu     sync.Mutex
	secret string
	events []webhookEvent
}

type webhookEvent struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	CreatedAt time.Time      `json:"created_at"`
	Data      map[string]any `json:"data"`
}

func newTicketSystem(t *testing.T) *ticketSystem {
	ts := &ticketSystem{t: t}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.receive))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *ticketSystem) receive(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("User-Agent") != "Tether-Webhooks/1" {
		ts.t.Errorf("webhook headers %v", r.Header)
	}
	var stamp string
	var sigs []string
	for _, kv := range strings.Split(r.Header.Get("Tether-Signature"), ",") {
		switch k, v, _ := strings.Cut(kv, "="); k {
		case "t":
			stamp = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	mac := hmac.New(sha256.New, []byte(ts.secret))
	mac.Write([]byte(stamp + "." + string(body)))
	want := []byte(hex.EncodeToString(mac.Sum(nil)))
	if !slices.ContainsFunc(sigs, func(sig string) bool { return hmac.Equal([]byte(sig), want) }) {
		ts.t.Errorf("bad signature %q on %s", r.Header.Get("Tether-Signature"), body)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev webhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		ts.t.Errorf("webhook body %s: %v", body, err)
	}
	ts.events = append(ts.events, ev)
	w.WriteHeader(http.StatusNoContent)
}

// wait returns the events of session once want arrived (in any order).
func (ts *ticketSystem) wait(t *testing.T, session string, want ...string) map[string]webhookEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ts.mu.Lock()
		got := map[string]webhookEvent{}
		var types []string
		for _, ev := range ts.events {
			if ev.Data["session_id"] == session {
				got[ev.Type] = ev
				types = append(types, ev.Type)
			}
		}
		ts.mu.Unlock()
		if !slices.ContainsFunc(want, func(typ string) bool { return !slices.Contains(types, typ) }) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s: webhook events %v, want %v", session, types, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (ts *ticketSystem) count(session, typ string) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := 0
	for _, ev := range ts.events {
		if ev.Data["session_id"] == session && ev.Type == typ {
			n++
		}
	}
	return n
}

// webhookBroker starts a broker that delivers webhooks to this machine;
// tune, when given, changes its configuration further.
func webhookBroker(t *testing.T, tune ...func(*server.Config)) (*broker, *http.Client) {
	b := startBrokerWith(t, func(c *server.Config) {
		c.Webhooks.AllowLoopback = true // the fake ticket system listens on 127.0.0.1
		c.Webhooks.PollInterval = 50 * time.Millisecond
		for _, f := range tune {
			f(c)
		}
	})
	tlsCfg, err := dial.TLSConfig(b.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	return b, &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
}

// register adds an endpoint for every event through the admin API.
func register(t *testing.T, b *broker, hc *http.Client, ts *ticketSystem) string {
	t.Helper()
	body := `{"url":"` + ts.URL + `/tether","events":["session.created","host.connected","consent.granted","consent.denied","consent.revoked","session.started","session.ended","recording.ready"],"description":"Helpdesk"}`
	status, out := apiCall(t, hc, "POST", b.URL()+"/api/v1/webhooks", b.admin.APIKey, body, nil)
	if status != http.StatusCreated {
		t.Fatalf("register webhook: %d %v", status, out)
	}
	ts.mu.Lock()
	ts.secret = out["secret"].(string)
	ts.mu.Unlock()
	return out["id"].(string)
}

// TestWebhookAdminAPI: only admins manage webhooks, bad input is refused
// field by field, the secret is shown once, and deliveries can be listed
// and sent again.
func TestWebhookAdminAPI(t *testing.T) {
	b, hc := webhookBroker(t)
	ctx := context.Background()
	token := map[string]string{"admin": b.admin.APIKey}
	for _, u := range []struct{ name, role string }{{"tina", "technician"}, {"sue", "supervisor"}} {
		if err := b.CreateUser(ctx, u.name, u.name+"-password-1", u.role); err != nil {
			t.Fatal(err)
		}
		u2, _ := dial.BrokerURL(b.URL())
		c, err := client.New(client.Config{Broker: u2, CAFile: b.CAFile()})
		if err != nil {
			t.Fatal(err)
		}
		if token[u.name], err = c.Login(ctx, u.name, u.name+"-password-1", ""); err != nil {
			t.Fatal(err)
		}
	}
	ts := newTicketSystem(t)
	api := b.URL() + "/api/v1"
	good := `{"url":"` + ts.URL + `/hook","events":["session.created"]}`

	for _, c := range []struct {
		who, method, path, body string
		status                  int
		code                    string
	}{
		{"tina", "POST", "/webhooks", good, 403, "forbidden"},
		{"sue", "POST", "/webhooks", good, 403, "forbidden"},
		{"tina", "GET", "/webhooks", "", 403, "forbidden"},
		{"sue", "GET", "/webhooks/wh_x/deliveries", "", 403, "forbidden"},
		{"tina", "DELETE", "/webhooks/wh_x", "", 403, "forbidden"},
		{"tina", "POST", "/webhooks/wh_x/deliveries/dlv_x/redeliver", "", 403, "forbidden"},
		{"", "GET", "/webhooks", "", 401, "unauthorized"},
		{"admin", "POST", "/webhooks", `{"url":"http://tickets.example.com/hook","events":["session.ended"]}`, 400, "invalid_url"},
		{"admin", "POST", "/webhooks", `{"url":"not a url","events":["session.ended"]}`, 400, "invalid_url"},
		{"admin", "POST", "/webhooks", `{"url":"https://169.254.169.254/latest/meta-data/","events":["session.ended"]}`, 400, "url_not_allowed"},
		{"admin", "POST", "/webhooks", `{"url":"` + ts.URL + `","events":[]}`, 400, "invalid_events"},
		{"admin", "POST", "/webhooks", `{"url":"` + ts.URL + `","events":["session.exploded"]}`, 400, "invalid_events"},
		{"admin", "POST", "/webhooks", `{"url":"` + ts.URL + `","events":["session.ended"],"description":"` + strings.Repeat("x", 300) + `"}`, 400, "invalid_description"},
		{"admin", "POST", "/webhooks", `{"url":"` + ts.URL + `","events":["session.ended"],"secret":"mine"}`, 400, "invalid_json"},
		{"admin", "GET", "/webhooks/wh_nope", "", 404, "not_found"},
		{"admin", "GET", "/webhooks/wh_nope/deliveries", "", 404, "not_found"},
		{"admin", "DELETE", "/webhooks/wh_nope", "", 404, "not_found"},
	} {
		status, out := apiCall(t, hc, c.method, api+c.path, token[c.who], c.body, nil)
		if status != c.status || errCode(out) != c.code {
			t.Errorf("%s %s %s: %d %v, want %d %s", c.who, c.method, c.path, status, out, c.status, c.code)
		}
		// A refused field is named, as for every other request.
		if fields, _ := out["error"].(map[string]any)["fields"].([]any); status == 400 && (len(fields) != 1 || fields[0].(map[string]any)["field"] == "") {
			t.Errorf("%s %s %s %s: the error names no field: %v", c.who, c.method, c.path, c.body, out)
		}
	}

	status, out := apiCall(t, hc, "POST", api+"/webhooks", token["admin"], good, nil)
	if status != 201 || !strings.HasPrefix(out["secret"].(string), "whsec_") || out["enabled"] != true {
		t.Fatalf("admin registers: %d %v", status, out)
	}
	id := out["id"].(string)
	ts.mu.Lock()
	ts.secret = out["secret"].(string)
	ts.mu.Unlock()
	// The same URL again, however it is spelled, would get every event
	// twice with two secrets: it is refused.
	for _, again := range []string{good, `{"url":"` + strings.Replace(ts.URL, "http://", "HTTP://", 1) + `/hook","events":["session.ended"]}`} {
		if status, out := apiCall(t, hc, "POST", api+"/webhooks", token["admin"], again, nil); status != 409 || errCode(out) != "webhook_exists" {
			t.Errorf("register %s again: %d %v, want 409 webhook_exists", again, status, out)
		}
	}
	// The secret is never shown again.
	status, out = apiCall(t, hc, "GET", api+"/webhooks", token["admin"], "", nil)
	if list := out["webhooks"].([]any); status != 200 || len(list) != 1 || list[0].(map[string]any)["id"] != id {
		t.Fatalf("list: %d %v", status, out)
	}
	if _, ok := out["webhooks"].([]any)[0].(map[string]any)["secret"]; ok {
		t.Fatal("the list shows the secret")
	}
	if status, out = apiCall(t, hc, "GET", api+"/webhooks/"+id, token["admin"], "", nil); status != 200 || out["secret"] != nil || out["url"] != ts.URL+"/hook" {
		t.Fatalf("get: %d %v", status, out)
	}

	// A session makes a delivery; the admin sees it and sends it again.
	status, out = apiCall(t, hc, "POST", api+"/sessions", token["tina"], `{"ticket":{"id":"INC-7"}}`, nil)
	if status != 201 {
		t.Fatalf("create session: %d %v", status, out)
	}
	sid := out["id"].(string)
	first := ts.wait(t, sid, "session.created")["session.created"]
	var deliveries []any
	waitFor(t, 10*time.Second, func() bool {
		_, out = apiCall(t, hc, "GET", api+"/webhooks/"+id+"/deliveries", token["admin"], "", nil)
		deliveries, _ = out["deliveries"].([]any)
		return len(deliveries) == 1 && deliveries[0].(map[string]any)["state"] == "succeeded"
	})
	if status, out := apiCall(t, hc, "GET", api+"/webhooks/"+id+"/deliveries?limit=0", token["admin"], "", nil); status != 400 || errCode(out) != "invalid_limit" ||
		fmt.Sprint(out["error"].(map[string]any)["fields"]) != "[map[code:invalid_limit field:limit message:limit must be a number from 1 to 200.]]" {
		t.Errorf("deliveries?limit=0: %d %v, want 400 invalid_limit naming limit", status, out)
	}
	// A misspelt parameter is refused, not ignored.
	if status, out := apiCall(t, hc, "GET", api+"/webhooks/"+id+"/deliveries?limt=5", token["admin"], "", nil); status != 400 || errCode(out) != "unknown_parameter" {
		t.Errorf("deliveries?limt=5: %d %v, want 400 unknown_parameter", status, out)
	}
	d := deliveries[0].(map[string]any)
	attempts := d["attempts"].([]any)
	if d["event_type"] != "session.created" || d["attempt_count"] != float64(1) || len(attempts) != 1 ||
		attempts[0].(map[string]any)["status_code"] != float64(204) {
		t.Fatalf("delivery %v", d)
	}
	status, out = apiCall(t, hc, "POST", api+"/webhooks/"+id+"/deliveries/"+d["id"].(string)+"/redeliver", token["admin"], "", nil)
	if status != 202 || out["redelivery_of"] != d["id"] || out["state"] != "pending" {
		t.Fatalf("redeliver: %d %v", status, out)
	}
	waitFor(t, 10*time.Second, func() bool { return ts.count(sid, "session.created") == 2 })
	ts.mu.Lock()
	again := ts.events[len(ts.events)-1]
	ts.mu.Unlock()
	if again.ID != first.ID {
		t.Errorf("redelivery has event id %s, want %s", again.ID, first.ID)
	}

	// Closing notes are bounded.
	status, out = apiCall(t, hc, "POST", api+"/sessions/"+sid+"/end", token["tina"], `{"notes":"`+strings.Repeat("n", 8<<10+1)+`"}`, nil)
	if status != 400 || errCode(out) != "invalid_notes" {
		t.Errorf("long notes: %d %v", status, out)
	}

	// Disabled, the endpoint hears nothing and cannot be redelivered to.
	if status, out = apiCall(t, hc, "PATCH", api+"/webhooks/"+id, token["admin"], `{"enabled":false}`, nil); status != 200 || out["enabled"] != false {
		t.Fatalf("disable: %d %v", status, out)
	}
	if status, out = apiCall(t, hc, "POST", api+"/webhooks/"+id+"/deliveries/"+d["id"].(string)+"/redeliver", token["admin"], "", nil); status != 409 || errCode(out) != "endpoint_disabled" {
		t.Errorf("redeliver to a disabled endpoint: %d %v", status, out)
	}
	status, out = apiCall(t, hc, "DELETE", api+"/webhooks/"+id, token["admin"], "", nil)
	if status != 204 {
		t.Fatalf("delete: %d %v", status, out)
	}
	if status, _ = apiCall(t, hc, "GET", api+"/webhooks/"+id, token["admin"], "", nil); status != 404 {
		t.Fatalf("get after delete: %d", status)
	}
}

// TestWebhookSessionEvents: a real session, from code to end with closing
// notes, reaches the ticket system as signed events; a session nobody
// joined still reports its creation and end.
func TestWebhookSessionEvents(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	b, hc := webhookBroker(t)
	ts := newTicketSystem(t)
	register(t, b, hc, ts)
	c := b.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Nobody joins this one.
	idle, err := c.CreateSession(ctx, "INC-100")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EndSession(ctx, idle.ID); err != nil {
		t.Fatal(err)
	}
	got := ts.wait(t, idle.ID, "session.created", "session.ended")
	if d := got["session.ended"].Data; d["ticket_id"] != "INC-100" || d["initiated_by"] != "technician" || d["technician"] != "admin" || d["started_at"] != nil ||
		d["duration_seconds"] != float64(0) || d["end_reason"] != "The technician ended the session." || len(d["permissions_granted"].([]any)) != 0 {
		t.Errorf("idle session.ended %v", d)
	}

	sess, err := c.CreateSession(ctx, "INC-101")
	if err != nil {
		t.Fatal(err)
	}
	host := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	ts.wait(t, sess.ID, "host.connected")
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatalf("no video: %v\nhost:\n%s", err, host.stderr.String())
	}
	got = ts.wait(t, sess.ID, "session.created", "host.connected", "consent.granted", "session.started")
	if h := got["host.connected"].Data["host"].(map[string]any); h["os"] == "" || h["os"] == nil {
		t.Errorf("host.connected %v", got["host.connected"].Data)
	}
	if g := got["consent.granted"].Data; g["viewer"] != "admin" || len(g["granted"].([]any)) != 3 {
		t.Errorf("consent.granted %v", g)
	}

	notes := "Reinstalled the printer driver.\nThe user printed a test page."
	status, out := apiCall(t, hc, "POST", b.URL()+"/api/v1/sessions/"+sess.ID+"/end", b.admin.APIKey, `{"notes":`+string(must(json.Marshal(notes)))+`}`, nil)
	if status != 200 || out["state"] != "ended" {
		t.Fatalf("end: %d %v", status, out)
	}
	got = ts.wait(t, sess.ID, "session.ended")
	ended := got["session.ended"]
	d := ended.Data
	if d["ticket_id"] != "INC-101" || d["technician"] != "admin" || d["closing_notes"] != notes ||
		d["end_reason"] != "The technician ended the session." {
		t.Errorf("session.ended %v", d)
	}
	if perms := d["permissions_granted"].([]any); !slices.Equal(perms, []any{"view", "control", "clipboard"}) {
		t.Errorf("permissions_granted %v", perms)
	}
	if viewers := d["viewers"].([]any); !slices.Equal(viewers, []any{"admin"}) {
		t.Errorf("viewers %v", viewers)
	}
	started, err1 := time.Parse(time.RFC3339, d["started_at"].(string))
	endedAt, err2 := time.Parse(time.RFC3339, d["ended_at"].(string))
	if err1 != nil || err2 != nil || endedAt.Before(started) || d["duration_seconds"] != float64(endedAt.Sub(started)/time.Second) {
		t.Errorf("times: started %v ended %v duration %v", d["started_at"], d["ended_at"], d["duration_seconds"])
	}
	if started.Before(time.Time(got["session.started"].CreatedAt).Add(-time.Second)) {
		t.Errorf("started_at %v before session.started %v", started, got["session.started"].CreatedAt)
	}

	// recording.ready links to the recording like join_url and console_url
	// do: absolute, so the ticket system can fetch it as given.
	rec := ts.wait(t, sess.ID, "recording.ready")["recording.ready"].Data
	link, _ := rec["url"].(string)
	if link != b.URL()+"/api/v1/recordings/"+sess.ID {
		t.Errorf("recording.ready url %q, want %s", link, b.URL()+"/api/v1/recordings/"+sess.ID)
	} else if status, out := apiCall(t, hc, "GET", link, b.admin.APIKey, "", nil); status != 200 || out["session"] != sess.ID {
		t.Errorf("GET recording.ready's url: %d %v", status, out)
	}

	// The host leaving after the end ends nothing twice.
	if code := host.wait(t, 20*time.Second); code != 0 {
		t.Errorf("host exit %d", code)
	}
	time.Sleep(300 * time.Millisecond)
	for _, id := range []string{idle.ID, sess.ID} {
		for _, typ := range []string{"session.created", "session.ended"} {
			if n := ts.count(id, typ); n != 1 {
				t.Errorf("%s: %d %s events", id, n, typ)
			}
		}
	}
}

// TestWebhookCodeExpiry: a session whose code expires before the user
// joins ends when the code expires, with nobody asking about it: the
// ticket system hears session.ended within a couple of seconds, ending at
// the expiry, and the session lists as ended. A code that expires while
// the broker is stopped ends its session as the broker starts, as of the
// expiry too.
func TestWebhookCodeExpiry(t *testing.T) {
	// Mostly waiting for codes to expire: it runs beside the other tests
	// that wait.
	t.Parallel()
	const ttl = 2 * time.Second
	b, hc := webhookBroker(t, func(c *server.Config) { c.CodeTTL = ttl })
	ts := newTicketSystem(t)
	register(t, b, hc, ts)
	c := b.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	sess, err := c.CreateSession(ctx, "INC-300")
	if err != nil {
		t.Fatal(err)
	}
	// One with a code for longer still waits.
	status, out := apiCall(t, hc, "POST", b.URL()+"/api/v1/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-301"},"code_ttl_seconds":600}`, nil)
	if status != 201 {
		t.Fatalf("create session: %d %v", status, out)
	}
	waiting := out["id"].(string)
	// The answer's times are the ones later reads give.
	if _, again := apiCall(t, hc, "GET", b.URL()+"/api/v1/sessions/"+waiting, b.admin.APIKey, "", nil); again["created_at"] != out["created_at"] || again["code_expires_at"] != out["code_expires_at"] {
		t.Errorf("created %v, expires %v; read back %v, %v", out["created_at"], out["code_expires_at"], again["created_at"], again["code_expires_at"])
	}

	got := ts.wait(t, sess.ID, "session.created", "session.ended")
	late := time.Since(sess.CodeExpiresAt)
	expires := sess.CodeExpiresAt.UTC().Truncate(time.Second).Format(time.RFC3339)
	d := got["session.ended"].Data
	t.Logf("session.ended arrived %v after the code expired", late.Round(time.Millisecond))
	if late > 2500*time.Millisecond {
		t.Errorf("session.ended arrived %v after the code expired", late)
	}
	if d["ended_at"] != expires || got["session.created"].Data["code_expires_at"] != expires {
		t.Errorf("session.ended ended_at %v, session.created code_expires_at %v; want both %s", d["ended_at"], got["session.created"].Data["code_expires_at"], expires)
	}
	if reason, _ := d["end_reason"].(string); !strings.Contains(reason, "code expired before the user joined") {
		t.Errorf("session.ended end_reason %q", reason)
	}

	// The API agrees, and a list of waiting sessions holds waiting ones only.
	for state, want := range map[string]string{"waiting": waiting, "ended": sess.ID} {
		status, out := apiCall(t, hc, "GET", b.URL()+"/api/v1/sessions?state="+state, b.admin.APIKey, "", nil)
		if status != 200 {
			t.Fatalf("list %s: %d %v", state, status, out)
		}
		var ids []any
		for _, s := range out["sessions"].([]any) {
			s := s.(map[string]any)
			if s["state"] != state {
				t.Errorf("the list of %s sessions holds %v, %v", state, s["id"], s["state"])
			}
			ids = append(ids, s["id"])
		}
		if !slices.Contains(ids, any(want)) {
			t.Errorf("the list of %s sessions %v lacks %s", state, ids, want)
		}
	}
	if s, err := c.Session(ctx, sess.ID); err != nil || s.State != "ended" {
		t.Errorf("the expired session is %+v, %v; want ended", s, err)
	}

	// A code that expires while the broker is stopped.
	dataDir := t.TempDir()
	b1 := startBrokerWith(t, func(c *server.Config) { c.DataDir = dataDir; c.CodeTTL = ttl })
	stopped, err := b1.client(t).CreateSession(ctx, "INC-302")
	if err != nil {
		t.Fatal(err)
	}
	b1.stop()
	time.Sleep(time.Until(stopped.CodeExpiresAt) + time.Second)
	_, ts2 := restartWithTicketSystem(t, ctx, dataDir, "session.ended")
	d = ts2.wait(t, stopped.ID, "session.ended")["session.ended"].Data
	if want := stopped.CodeExpiresAt.UTC().Truncate(time.Second).Format(time.RFC3339); d["ended_at"] != want {
		t.Errorf("after the restart session.ended ended_at %v, want the expiry %s", d["ended_at"], want)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
