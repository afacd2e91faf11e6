package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/signal"
	"github.com/tether-support/tether/broker/store"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// received is one request as a ticket system's receiver saw it.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a fake ticket system: it records requests and answers each
// with the status answer gives (0 drops the connection without answer).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int) int // n counts requests from 1
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Clone(), body})
		n := len(r.got)
		r.mu.Unlock()
		status := http.StatusNoContent
		if r.answer != nil {
			status = r.answer(n)
		}
		if status == 0 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.WriteHeader(status)
		if status >= 300 {
			io.WriteString(w, "receiver says no")
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// env is a dispatcher on a real SQLite store, with one technician and
// one session.
type env struct {
	path  string
	store *store.Store
	d     *Dispatcher
	clock *clock
	admin *store.User
	sess  *store.Session
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newEnv(t *testing.T, tune func(*Config)) *env {
	t.Helper()
	e := &env{path: filepath.Join(t.TempDir(), "t.db"), clock: &clock{t: t0}}
	e.open(t, tune)
	ctx := context.Background()
	e.admin = &store.User{Username: "ada", PasswordHash: "x", Role: "admin", CreatedAt: t0}
	tech := &store.User{Username: "tina", PasswordHash: "x", Role: "technician", CreatedAt: t0}
	for _, u := range []*store.User{e.admin, tech} {
		if err := e.store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	e.sess = &store.Session{ID: "s_1", CodeHash: "h", CodeExpiresAt: t0.Add(10 * time.Minute), CreatedBy: tech.ID, TicketID: "INC-42",
		State: store.StateWaiting, CreatedAt: t0, Permissions: []string{"view", "control", "clipboard"}}
	if err := e.store.CreateSession(ctx, e.sess); err != nil {
		t.Fatal(err)
	}
	return e
}

// open opens the store and starts a dispatcher on it.
func (e *env) open(t *testing.T, tune func(*Config)) {
	t.Helper()
	s, err := store.OpenSQLite(context.Background(), e.path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: s, Logger: testLogger(t), Now: e.clock.Now, AllowLoopback: true, PollInterval: 5 * time.Millisecond}
	if tune != nil {
		tune(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.store, e.d = s, d
	t.Cleanup(func() { e.close(t) })
}

// close stops the dispatcher and checks that none of its goroutines is
// left, then closes the store.
func (e *env) close(t *testing.T) {
	if e.d == nil {
		return
	}
	e.d.Close()
	e.d = nil
	// A goroutine that called wg.Done may still be returning: give it a moment.
	deadline := time.Now().Add(time.Second)
	for g := dispatcherGoroutines(); g != ""; g = dispatcherGoroutines() {
		if time.Now().After(deadline) {
			t.Errorf("goroutines left after Close:\n%s", g)
			break
		}
		time.Sleep(time.Millisecond)
	}
	e.store.Close()
}

func dispatcherGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var left []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "webhook.(*Dispatcher)") {
			left = append(left, g)
		}
	}
	return strings.Join(left, "\n\n")
}

// audit does what the hub does: records an entry of the audit trail and
// passes it to Notify.
func (e *env) audit(t *testing.T, typ, actor string, detail any) {
	t.Helper()
	data, _ := json.Marshal(detail)
	ev := &store.Event{Session: e.sess.ID, At: e.clock.Now(), Actor: actor, Type: typ, Detail: string(data)}
	if err := e.store.AddEvent(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	e.d.Notify(context.Background(), signal.Event{Session: e.sess.ID, Type: typ, Actor: actor, At: e.clock.Now(), Detail: data})
}

func (e *env) endpoint(t *testing.T, url string, events ...string) *store.WebhookEndpoint {
	t.Helper()
	ep, err := e.d.CreateEndpoint(context.Background(), EndpointSpec{URL: url, Events: events}, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func (e *env) deliveries(t *testing.T, ep string) ([]*store.WebhookDelivery, map[string][]*store.WebhookAttempt) {
	t.Helper()
	list, attempts, err := e.d.Deliveries(context.Background(), ep, store.WebhookDeliveryFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return list, attempts
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// verifySignature is the receiver's check, written from the documented
// scheme alone: HMAC-SHA256(secret, "<t>.<body>") in hex is one of the v1
// values, t recent.
func verifySignature(header, secret string, body []byte, now time.Time) error {
	var ts string
	var sigs []string
	for _, kv := range strings.Split(header, ",") {
		switch k, v, _ := strings.Cut(kv, "="); k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("no timestamp")
	}
	if now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return errors.New("stale timestamp")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := hex.EncodeToString(mac.Sum(nil))
	for _, sig := range sigs {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("signature mismatch")
}

func TestSignedDelivery(t *testing.T) {
	e := newEnv(t, nil)
	rcv := newReceiver(t, nil)
	ep := e.endpoint(t, rcv.URL+"/tether?channel=it", SessionCreatedType)
	if !strings.HasPrefix(ep.Secret, "whsec_") || len(ep.Secret) < 40 {
		t.Fatalf("secret %q", ep.Secret)
	}
	e.d.Notify(context.Background(), signal.Event{Session: e.sess.ID, Type: "session.created", Actor: "tina", At: t0, Detail: []byte("{}")})
	waitFor(t, "the delivery", func() bool { return len(rcv.requests()) == 1 })
	got := rcv.requests()[0]

	for k, want := range map[string]string{"Content-Type": "application/json", "User-Agent": "Tether-Webhooks/1", "Tether-Event": "session.created"} {
		if got.header.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, got.header.Get(k), want)
		}
	}
	sig := got.header.Get("Tether-Signature")
	if !strings.HasPrefix(sig, "t="+strconv.FormatInt(t0.Unix(), 10)+",v1=") {
		t.Errorf("signature header %q", sig)
	}
	if err := verifySignature(sig, ep.Secret, got.body, t0); err != nil {
		t.Fatalf("receiver refuses the signature: %v", err)
	}
	// A changed body, or another secret, does not verify.
	tampered := []byte(strings.Replace(string(got.body), "INC-42", "INC-43", 1))
	if err := verifySignature(sig, ep.Secret, tampered, t0); err == nil {
		t.Error("tampered body verifies")
	}
	if err := verifySignature(sig, "whsec_other", got.body, t0); err == nil {
		t.Error("another secret verifies")
	}
	// The package's own Verify agrees with the receiver.
	if err := Verify(sig, ep.Secret, got.body, t0.Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := Verify(sig, ep.Secret, tampered, t0, 5*time.Minute); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("Verify of a tampered body: %v", err)
	}
	if err := Verify(sig, ep.Secret, got.body, t0.Add(time.Hour), 5*time.Minute); !errors.Is(err, ErrSignatureExpired) {
		t.Errorf("Verify an hour later: %v", err)
	}

	var body struct {
		ID        string
		Type      string
		CreatedAt string `json:"created_at"`
		Data      map[string]any
	}
	if err := json.Unmarshal(got.body, &body); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(body.ID, "evt_") || body.Type != "session.created" || body.CreatedAt != "2026-11-23T12:00:00Z" {
		t.Errorf("envelope %+v", body)
	}
	if body.Data["session_id"] != "s_1" || body.Data["ticket_id"] != "INC-42" || body.Data["technician"] != "tina" ||
		body.Data["code_expires_at"] != "2026-11-23T12:10:00Z" {
		t.Errorf("data %v", body.Data)
	}
	if _, ok := body.Data["code"]; ok {
		t.Error("the support code is sent")
	}

	var list []*store.WebhookDelivery
	var attempts map[string][]*store.WebhookAttempt
	waitFor(t, "the attempt recorded", func() bool { list, attempts = e.deliveries(t, ep.ID); return list[0].Attempts == 1 })
	if len(list) != 1 || list[0].State != store.DeliverySucceeded || got.header.Get("Tether-Delivery") != list[0].ID {
		t.Fatalf("deliveries %+v", list)
	}
	if a := attempts[list[0].ID]; len(a) != 1 || a[0].StatusCode != 204 || a[0].Error != "" || a[0].Attempt != 1 {
		t.Fatalf("attempts %+v", a)
	}
}

// TestRetries: the receiver fails twice, then takes the event; each
// attempt waits for its place in the schedule, and every one is recorded.
func TestRetries(t *testing.T) {
	e := newEnv(t, nil)
	rcv := newReceiver(t, func(n int) int {
		switch n {
		case 1:
			return http.StatusServiceUnavailable
		case 2:
			return 0 // the connection drops
		}
		return http.StatusOK
	})
	ep := e.endpoint(t, rcv.URL, SessionCreatedType)
	e.audit(t, "session.created", "tina", map[string]any{})
	waitFor(t, "attempt 1", func() bool { return len(rcv.requests()) == 1 })

	list, attempts := e.deliveries(t, ep.ID)
	dl := list[0]
	waitFor(t, "attempt 1 recorded", func() bool { list, attempts = e.deliveries(t, ep.ID); return list[0].Attempts == 1 })
	if list[0].State != store.DeliveryPending || !list[0].NextAttemptAt.Equal(t0.Add(10*time.Second)) || list[0].LastStatus != 503 {
		t.Fatalf("after attempt 1: %+v", list[0])
	}
	// Nothing happens before the retry is due.
	e.clock.Advance(9 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("%d requests before the retry was due", n)
	}
	e.clock.Advance(time.Second)
	waitFor(t, "attempt 2 recorded", func() bool { list, _ = e.deliveries(t, ep.ID); return list[0].Attempts == 2 })
	if !list[0].NextAttemptAt.Equal(t0.Add(40 * time.Second)) {
		t.Fatalf("attempt 3 due at %v, want 30 s after attempt 2", list[0].NextAttemptAt)
	}
	e.clock.Advance(30 * time.Second)
	waitFor(t, "success", func() bool { list, attempts = e.deliveries(t, ep.ID); return list[0].State == store.DeliverySucceeded })

	a := attempts[dl.ID]
	if len(a) != 3 {
		t.Fatalf("%d attempts recorded", len(a))
	}
	if a[0].Attempt != 1 || a[0].StatusCode != 503 || a[0].Error != "HTTP 503" || a[0].Response != "receiver says no" || !a[0].At.Equal(t0) {
		t.Errorf("attempt 1: %+v", a[0])
	}
	if a[1].Attempt != 2 || a[1].StatusCode != 0 || a[1].Error == "" || !a[1].At.Equal(t0.Add(10*time.Second)) {
		t.Errorf("attempt 2: %+v", a[1])
	}
	if a[2].Attempt != 3 || a[2].StatusCode != 200 || a[2].Error != "" {
		t.Errorf("attempt 3: %+v", a[2])
	}
	// Every attempt sent the same event, signed anew.
	reqs := rcv.requests()
	if len(reqs) != 3 || string(reqs[0].body) != string(reqs[2].body) {
		t.Fatalf("bodies differ between attempts")
	}
	if err := verifySignature(reqs[2].header.Get("Tether-Signature"), ep.Secret, reqs[2].body, t0.Add(40*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// TestOrderBySequence: after an outage a session's events arrive out of
// order (session.ended before session.created, whose retry waits), and
// the documented sequence field puts them back in the order they happened,
// even for events of the same second.
func TestOrderBySequence(t *testing.T) {
	e := newEnv(t, nil)
	rcv := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusServiceUnavailable // the ticket system is down
		}
		return http.StatusNoContent
	})
	e.endpoint(t, rcv.URL, EventTypes...)
	e.audit(t, "session.created", "tina", map[string]any{})
	waitFor(t, "the first attempt", func() bool { return len(rcv.requests()) == 1 })
	e.audit(t, "consent.granted", "user", map[string]any{"viewer": "tina", "requested": []string{"view"}, "granted": []string{"view"}})
	e.audit(t, "session.ended", "broker", map[string]any{"reason": "done"})
	waitFor(t, "the later events", func() bool { return len(rcv.requests()) == 4 })
	e.clock.Advance(10 * time.Second)
	waitFor(t, "the retry", func() bool { return len(rcv.requests()) == 5 })

	type event struct {
		Type      string
		Sequence  int64
		CreatedAt time.Time `json:"created_at"`
	}
	var arrived []event
	for _, r := range rcv.requests()[1:] {
		var ev event
		if err := json.Unmarshal(r.body, &ev); err != nil || ev.Sequence <= 0 {
			t.Fatalf("event without a sequence: %s", r.body)
		}
		arrived = append(arrived, ev)
	}
	if arrived[len(arrived)-1].Type != SessionCreatedType {
		t.Fatalf("session.created did not arrive last; the test does not show an outage: %v", arrived)
	}
	slices.SortFunc(arrived, func(a, b event) int { return int(a.Sequence - b.Sequence) })
	var types []string
	for i, ev := range arrived {
		types = append(types, ev.Type)
		if i > 0 && ev.Sequence == arrived[i-1].Sequence {
			t.Errorf("%s and %s have the same sequence %d", arrived[i-1].Type, ev.Type, ev.Sequence)
		}
	}
	if want := []string{SessionCreatedType, ConsentGrantedType, SessionStartedType, SessionEndedType}; !slices.Equal(types, want) {
		t.Errorf("ordered by sequence: %v, want %v", types, want)
	}
}

// TestResponseExcerpt: of an answer, the admin sees only the first line
// of a failure, shortened, and nothing of a success, so that a URL pointed
// at an internal service does not let webhook admins read its pages.
func TestResponseExcerpt(t *testing.T) {
	e := newEnv(t, nil)
	page := "\n  Error: invalid signature, check the secret " + strings.Repeat("x", 300) + "\r\nline two: internal details\n"
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			io.WriteString(w, "account 1234, balance 99")
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, page)
	}))
	defer internal.Close()
	failing := e.endpoint(t, internal.URL+"/fail", SessionCreatedType)
	ok := e.endpoint(t, internal.URL+"/ok", SessionCreatedType)
	e.audit(t, "session.created", "tina", map[string]any{})
	response := func(ep string) string {
		var list []*store.WebhookDelivery
		var attempts map[string][]*store.WebhookAttempt
		waitFor(t, "the attempt", func() bool { list, attempts = e.deliveries(t, ep); return list[0].Attempts == 1 })
		return attempts[list[0].ID][0].Response
	}
	if got, want := response(failing.ID), "Error: invalid signature, check the secret "+strings.Repeat("x", 157); got != want {
		t.Errorf("kept of a failure: %q, want %q", got, want)
	}
	if got := response(ok.ID); got != "" {
		t.Errorf("kept of a success: %q", got)
	}
}

// TestGivesUp: a receiver that never answers in time is tried MaxAttempts
// times, then the delivery fails.
func TestGivesUp(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Timeout = 100 * time.Millisecond
		c.MaxAttempts = 2
		c.Backoff = []time.Duration{time.Minute}
	})
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	ep := e.endpoint(t, slow.URL, SessionCreatedType)
	e.audit(t, "session.created", "tina", map[string]any{})
	var list []*store.WebhookDelivery
	waitFor(t, "attempt 1", func() bool { list, _ = e.deliveries(t, ep.ID); return list[0].Attempts == 1 })
	e.clock.Advance(time.Minute)
	waitFor(t, "failure", func() bool { list, _ = e.deliveries(t, ep.ID); return list[0].State == store.DeliveryFailed })
	if list[0].Attempts != 2 || !list[0].NextAttemptAt.IsZero() || !strings.Contains(list[0].LastError, "no answer within 100ms") {
		t.Fatalf("failed delivery %+v", list[0])
	}
}

// TestUnsubscribedTypeNotRetried: the receiver refuses a session.created,
// and an admin takes session.created off the endpoint's events. Its retry
// is not sent: the delivery fails with an attempt that says why, while the
// event types the endpoint still takes go on being delivered.
func TestUnsubscribedTypeNotRetried(t *testing.T) {
	e := newEnv(t, nil)
	rcv := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	ep := e.endpoint(t, rcv.URL, SessionCreatedType, HostConnectedType)
	e.audit(t, "session.created", "tina", map[string]any{})
	waitFor(t, "attempt 1 recorded", func() bool { l, _ := e.deliveries(t, ep.ID); return len(l) == 1 && l[0].Attempts == 1 })
	only := []string{HostConnectedType}
	if _, err := e.d.UpdateEndpoint(context.Background(), ep.ID, EndpointUpdate{Events: &only}, e.admin); err != nil {
		t.Fatal(err)
	}
	e.audit(t, "host.connected", "user", map[string]any{"hostname": "pc-7", "os": "linux"})
	e.clock.Advance(10 * time.Second) // the retry of session.created is due
	var list []*store.WebhookDelivery
	var attempts map[string][]*store.WebhookAttempt
	waitFor(t, "both deliveries done", func() bool {
		list, attempts = e.deliveries(t, ep.ID)
		return len(list) == 2 && list[0].State != store.DeliveryPending && list[1].State != store.DeliveryPending
	})
	for _, r := range rcv.requests()[1:] {
		if typ := r.header.Get(EventHeader); typ != HostConnectedType {
			t.Errorf("%s sent after the endpoint dropped it from its events", typ)
		}
	}
	created := list[1]
	if list[0].EventType != HostConnectedType || list[0].State != store.DeliverySucceeded {
		t.Errorf("host.connected: %+v", list[0])
	}
	want := "not sent: the endpoint no longer takes session.created events"
	if a := attempts[created.ID]; created.State != store.DeliveryFailed || len(a) != 2 || a[1].StatusCode != 0 || a[1].Error != want || created.LastError != want {
		t.Errorf("session.created: %+v, attempts %v; want it failed with the error %q", created, a, want)
	}
}

// TestSlowReceiverHoldsBackNobody: one ticket system stalls on every
// request; another one's events still arrive at once, while the first
// is still stalling, and not after the timeout has freed the workers.
func TestSlowReceiverHoldsBackNobody(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Timeout = 5 * time.Second })
	release := make(chan struct{})
	var mu sync.Mutex
	stalled := 0
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		stalled++
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	fast := newReceiver(t, nil)
	e.endpoint(t, slow.URL, ConsentGrantedType, SessionEndedType)
	e.endpoint(t, fast.URL, SessionEndedType)

	// More events for the stalling receiver than there used to be workers.
	for _, viewer := range []string{"tina", "lee", "sam", "kim", "ola", "max"} {
		e.audit(t, "consent.granted", "user", map[string]any{"viewer": viewer, "requested": []string{"view"}, "granted": []string{"view"}})
	}
	waitFor(t, "the slow receiver to stall", func() bool { mu.Lock(); defer mu.Unlock(); return stalled > 0 })
	start := time.Now()
	e.audit(t, "session.ended", "broker", map[string]any{"reason": "done"})
	waitFor(t, "the fast receiver's delivery", func() bool { return len(fast.requests()) == 1 })
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the fast receiver waited %v for the slow one", took)
	}
	mu.Lock()
	defer mu.Unlock()
	if stalled != 1 {
		t.Errorf("the slow receiver has %d requests under way at once, want one", stalled)
	}
}

func TestRedeliver(t *testing.T) {
	e := newEnv(t, nil)
	rcv := newReceiver(t, nil)
	ep := e.endpoint(t, rcv.URL, SessionCreatedType)
	other := e.endpoint(t, rcv.URL+"/other", HostConnectedType)
	e.audit(t, "session.created", "tina", map[string]any{})
	waitFor(t, "the delivery", func() bool { return len(rcv.requests()) == 1 })
	list, _ := e.deliveries(t, ep.ID)
	first := list[0]
	waitFor(t, "success", func() bool { list, _ = e.deliveries(t, ep.ID); return list[0].State == store.DeliverySucceeded })

	ctx := context.Background()
	e.clock.Advance(time.Hour)
	re, err := e.d.Redeliver(ctx, ep.ID, first.ID, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the redelivery", func() bool { return len(rcv.requests()) == 2 })
	reqs := rcv.requests()
	if string(reqs[0].body) != string(reqs[1].body) {
		t.Error("a redelivery sends another body")
	}
	if reqs[1].header.Get("Tether-Delivery") != re.ID || reqs[1].header.Get("Tether-Signature") == reqs[0].header.Get("Tether-Signature") {
		t.Error("a redelivery is not its own delivery, signed anew")
	}
	if err := verifySignature(reqs[1].header.Get("Tether-Signature"), ep.Secret, reqs[1].body, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	var attempts map[string][]*store.WebhookAttempt
	waitFor(t, "redelivery recorded", func() bool {
		list, attempts = e.deliveries(t, ep.ID)
		return len(list) == 2 && list[0].State == store.DeliverySucceeded
	})
	if list[0].ID != re.ID || list[0].RedeliveryOf != first.ID || list[0].EventID != first.EventID || len(attempts[re.ID]) != 1 {
		t.Fatalf("deliveries after redelivery %+v", list)
	}

	if _, err := e.d.Redeliver(ctx, other.ID, first.ID, e.admin); !errors.Is(err, ErrNotFound) {
		t.Errorf("redeliver through another endpoint: %v", err)
	}
	if _, err := e.d.Redeliver(ctx, ep.ID, "dlv_nope", e.admin); !errors.Is(err, ErrNotFound) {
		t.Errorf("redeliver an unknown delivery: %v", err)
	}
	off := false
	if _, err := e.d.UpdateEndpoint(ctx, ep.ID, EndpointUpdate{Enabled: &off}, e.admin); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Redeliver(ctx, ep.ID, first.ID, e.admin); !errors.Is(err, ErrEndpointDisabled) {
		t.Errorf("redeliver to a disabled endpoint: %v", err)
	}
}

// TestRotateSecret: an endpoint given a new secret without a grace period
// (its secret leaked) signs its next requests with the new one alone, the
// retry of an earlier event too, and keeps its deliveries and their
// history.
func TestRotateSecret(t *testing.T) {
	e := newEnv(t, nil)
	rcv := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	ep := e.endpoint(t, rcv.URL, SessionCreatedType)
	e.audit(t, "session.created", "tina", map[string]any{})
	var list []*store.WebhookDelivery
	waitFor(t, "attempt 1", func() bool { list, _ = e.deliveries(t, ep.ID); return list[0].Attempts == 1 })

	rotated, err := e.d.RotateSecret(context.Background(), ep.ID, 0, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.ID != ep.ID || !strings.HasPrefix(rotated.Secret, "whsec_") || rotated.Secret == ep.Secret {
		t.Fatalf("rotated %+v", rotated)
	}
	e.clock.Advance(10 * time.Second)
	var attempts map[string][]*store.WebhookAttempt
	waitFor(t, "the retry", func() bool {
		list, attempts = e.deliveries(t, ep.ID)
		return list[0].State == store.DeliverySucceeded
	})
	retry := rcv.requests()[1]
	sig := retry.header.Get("Tether-Signature")
	if err := verifySignature(sig, rotated.Secret, retry.body, e.clock.Now()); err != nil {
		t.Errorf("the retry with the new secret: %v", err)
	}
	if err := verifySignature(sig, ep.Secret, retry.body, e.clock.Now()); err == nil {
		t.Error("the old secret still verifies")
	}
	if len(list) != 1 || len(attempts[list[0].ID]) != 2 {
		t.Errorf("history after the new secret: %+v %+v", list, attempts)
	}
	if _, err := e.d.RotateSecret(context.Background(), "wh_nope", 0, e.admin); !errors.Is(err, ErrNotFound) {
		t.Errorf("new secret for no endpoint: %v", err)
	}
	for _, grace := range []time.Duration{-time.Second, SecretGrace + time.Second} {
		var fe *FieldError
		if _, err := e.d.RotateSecret(context.Background(), ep.ID, grace, e.admin); !errors.As(err, &fe) || fe.Field != "grace_seconds" {
			t.Errorf("new secret with %v of grace: %v", grace, err)
		}
	}
}

// TestRotateSecretGrace: after a new secret, a ticket system that has not
// saved it yet goes on accepting deliveries, signed with the old secret
// too, for the grace period; after it, deliveries carry the new signature
// alone, the receiver with the old secret refuses them, and the delivery
// waits for its retry until the receiver has the new secret. The old
// secret is then gone from the database.
func TestRotateSecretGrace(t *testing.T) {
	e := newEnv(t, nil)
	// The ticket system keeps the secret its admin saved, and refuses
	// requests it does not verify.
	var mu sync.Mutex
	saved := ""
	var rcv *receiver
	rcv = newReceiver(t, func(n int) int {
		mu.Lock()
		defer mu.Unlock()
		got := rcv.requests()[n-1]
		if verifySignature(got.header.Get("Tether-Signature"), saved, got.body, e.clock.Now()) != nil {
			return http.StatusUnauthorized
		}
		return http.StatusNoContent
	})
	ep := e.endpoint(t, rcv.URL, SessionCreatedType, HostConnectedType, SessionEndedType)
	mu.Lock()
	saved = ep.Secret
	mu.Unlock()
	ctx := context.Background()
	state := func(i int) string {
		list, _ := e.deliveries(t, ep.ID)
		if len(list) <= i {
			return ""
		}
		return list[len(list)-1-i].State // oldest first
	}

	rotated, err := e.d.RotateSecret(ctx, ep.ID, SecretGrace, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	if !rotated.OldSecretUntil.Equal(t0.Add(24*time.Hour)) || rotated.Secret == ep.Secret {
		t.Fatalf("rotated %+v", rotated)
	}
	// An hour later the ticket system still has the old secret only.
	e.clock.Advance(time.Hour)
	e.audit(t, "session.created", "tina", map[string]any{})
	waitFor(t, "the delivery during the grace period", func() bool { return state(0) == store.DeliverySucceeded })
	during := rcv.requests()[0]
	sig := during.header.Get("Tether-Signature")
	for name, secret := range map[string]string{"old": ep.Secret, "new": rotated.Secret} {
		if err := verifySignature(sig, secret, during.body, e.clock.Now()); err != nil {
			t.Errorf("during the grace period the %s secret does not verify: %v", name, err)
		}
		if err := Verify(sig, secret, during.body, e.clock.Now(), 5*time.Minute); err != nil {
			t.Errorf("Verify with the %s secret during the grace period: %v", name, err)
		}
	}
	if n := strings.Count(sig, "v1="); n != 2 {
		t.Errorf("%d signatures during the grace period: %s", n, sig)
	}

	// A day after the change the old secret signs nothing more: the
	// ticket system that still has it refuses, and the delivery waits.
	e.clock.Advance(23 * time.Hour)
	e.audit(t, "host.connected", "host", map[string]any{"hostname": "pc-1", "os": "linux"})
	waitFor(t, "the refused delivery after the grace period", func() bool {
		list, _ := e.deliveries(t, ep.ID)
		return len(list) == 2 && list[0].Attempts == 1
	})
	after := rcv.requests()[1]
	sig = after.header.Get("Tether-Signature")
	if err := verifySignature(sig, ep.Secret, after.body, e.clock.Now()); err == nil {
		t.Errorf("the old secret still verifies after the grace period: %s", sig)
	}
	if err := verifySignature(sig, rotated.Secret, after.body, e.clock.Now()); err != nil {
		t.Errorf("the new secret does not verify after the grace period: %v", err)
	}
	if state(1) != store.DeliveryPending {
		t.Errorf("the refused delivery is %q, want pending", state(1))
	}
	waitFor(t, "the old secret dropped from the database", func() bool {
		got, err := e.store.WebhookEndpointByID(ctx, ep.ID)
		return err == nil && got.OldSecret == "" && got.OldSecretUntil.IsZero() && got.Secret == rotated.Secret
	})

	// The ticket system saves the new secret; the retry goes through.
	mu.Lock()
	saved = rotated.Secret
	mu.Unlock()
	e.clock.Advance(10 * time.Second)
	waitFor(t, "the retry with the new secret", func() bool { return state(1) == store.DeliverySucceeded })
}

// TestRestart: deliveries pending when the broker stops go out when it
// starts again, on their schedule.
func TestRestart(t *testing.T) {
	e := newEnv(t, nil)
	var down sync.Mutex
	failing := true
	rcv := newReceiver(t, func(int) int {
		down.Lock()
		defer down.Unlock()
		if failing {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	ep := e.endpoint(t, rcv.URL, SessionCreatedType, HostConnectedType)
	e.audit(t, "session.created", "tina", map[string]any{})
	var list []*store.WebhookDelivery
	waitFor(t, "attempt 1", func() bool { list, _ = e.deliveries(t, ep.ID); return list[0].Attempts == 1 })
	created := list[0]

	// Stopped, the dispatcher still stores what happens.
	e.d.Close()
	e.audit(t, "host.connected", "user", map[string]any{"hostname": "pc-7", "os": "linux"})
	e.close(t)
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("%d requests while stopped", n)
	}

	down.Lock()
	failing = false
	down.Unlock()
	e.open(t, nil)
	waitFor(t, "host.connected after restart", func() bool { return len(rcv.requests()) == 2 })
	if typ := rcv.requests()[1].header.Get("Tether-Event"); typ != HostConnectedType {
		t.Fatalf("first after restart: %s", typ)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(rcv.requests()); n != 2 {
		t.Fatalf("session.created retried before it was due (%d requests)", n)
	}
	e.clock.Advance(10 * time.Second)
	var attempts map[string][]*store.WebhookAttempt
	waitFor(t, "session.created after restart", func() bool {
		list, attempts = e.deliveries(t, ep.ID)
		return !slices.ContainsFunc(list, func(d *store.WebhookDelivery) bool { return d.State != store.DeliverySucceeded })
	})
	if a := attempts[created.ID]; len(a) != 2 || a[0].StatusCode != 502 || a[1].StatusCode != 200 {
		t.Fatalf("attempts of session.created %+v", a)
	}
}

// TestShutdownKeepsAnswers: the broker stops while two deliveries are
// under way. The one whose receiver had answered 2xx (its body still
// coming) is recorded as delivered, not sent again at the next start; the
// one still waiting for an answer is cut short, not counted, and stays
// pending.
func TestShutdownKeepsAnswers(t *testing.T) {
	e := newEnv(t, nil)
	var answered sync.WaitGroup
	answered.Add(2)
	stop := make(chan struct{})
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/answers" {
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "{")
			w.(http.Flusher).Flush()
		}
		answered.Done()
		<-stop
	}))
	t.Cleanup(rcv.Close)
	t.Cleanup(func() { close(stop) }) // before rcv.Close, which waits for the handlers
	answers := e.endpoint(t, rcv.URL+"/answers", SessionCreatedType)
	silent := e.endpoint(t, rcv.URL+"/silent", SessionCreatedType)
	e.audit(t, "session.created", "tina", map[string]any{})
	answered.Wait()
	time.Sleep(100 * time.Millisecond) // the answer's header reaches the dispatcher
	e.d.Close()

	list, attempts := e.deliveries(t, answers.ID)
	if len(list) != 1 || list[0].State != store.DeliverySucceeded || list[0].Attempts != 1 || list[0].LastStatus != http.StatusOK {
		t.Errorf("a delivery answered 200 before the shutdown: %+v", list[0])
	}
	list, attempts = e.deliveries(t, silent.ID)
	if len(list) != 1 || list[0].State != store.DeliveryPending || list[0].Attempts != 0 || len(attempts[list[0].ID]) != 0 {
		t.Errorf("a delivery with no answer before the shutdown: %+v, attempts %v", list[0], attempts[list[0].ID])
	}
}

// TestOldHistoryPruned: thirty days after a delivery is done, the
// dispatcher deletes it with its attempts and its event; a delivery still
// pending stays, however old.
func TestOldHistoryPruned(t *testing.T) {
	e := newEnv(t, nil)
	ok := newReceiver(t, nil)
	down := newReceiver(t, func(int) int { return http.StatusBadGateway })
	done := e.endpoint(t, ok.URL, SessionCreatedType)
	pending := e.endpoint(t, down.URL, SessionCreatedType)
	e.audit(t, "session.created", "tina", map[string]any{})
	waitFor(t, "both attempts recorded", func() bool {
		a, _ := e.deliveries(t, done.ID)
		b, _ := e.deliveries(t, pending.ID)
		return len(a) == 1 && a[0].Attempts == 1 && len(b) == 1 && b[0].Attempts == 1
	})
	kept, _ := e.deliveries(t, pending.ID)

	e.clock.Advance(HistoryKept - time.Hour)
	time.Sleep(50 * time.Millisecond)
	if list, _ := e.deliveries(t, done.ID); len(list) != 1 {
		t.Fatalf("a delivery done less than 30 days ago was deleted")
	}
	e.clock.Advance(25 * time.Hour)
	waitFor(t, "the done delivery deleted", func() bool { list, _ := e.deliveries(t, done.ID); return len(list) == 0 })
	if list, _ := e.deliveries(t, pending.ID); len(list) != 1 || list[0].ID != kept[0].ID || list[0].State != store.DeliveryPending {
		t.Errorf("the pending delivery: %v, want it kept", list)
	}
	if _, err := e.store.WebhookEventByID(context.Background(), kept[0].EventID); err != nil {
		t.Errorf("the event of the pending delivery: %v", err)
	}
}

// TestSequenceAfterRestartWithClockBack: the broker's clock is set back
// an hour while it is stopped; the events after the restart still have
// larger sequence numbers than those before, as receivers order by them.
func TestSequenceAfterRestartWithClockBack(t *testing.T) {
	e := newEnv(t, nil)
	rcv := newReceiver(t, nil)
	e.endpoint(t, rcv.URL, SessionCreatedType, SessionEndedType)
	e.clock.Advance(time.Hour)
	e.audit(t, "session.created", "tina", map[string]any{})
	waitFor(t, "session.created", func() bool { return len(rcv.requests()) == 1 })
	e.close(t)

	e.clock.Advance(-time.Hour)
	e.open(t, nil)
	e.audit(t, "session.ended", "broker", map[string]any{"reason": "done"})
	waitFor(t, "session.ended", func() bool { return len(rcv.requests()) == 2 })
	var before, after struct{ Sequence int64 }
	json.Unmarshal(rcv.requests()[0].body, &before)
	json.Unmarshal(rcv.requests()[1].body, &after)
	if before.Sequence == 0 || after.Sequence <= before.Sequence {
		t.Fatalf("sequence %d after the restart, %d before it", after.Sequence, before.Sequence)
	}
}

// TestSessionEvents: the hub's audit entries become the documented
// events, once where once is promised, and session.ended sums up.
func TestSessionEvents(t *testing.T) {
	e := newEnv(t, nil)
	all := newReceiver(t, nil)
	some := newReceiver(t, nil)
	e.endpoint(t, all.URL, EventTypes...)
	e.endpoint(t, some.URL, SessionEndedType)

	e.audit(t, "session.created", "tina", map[string]any{})
	e.clock.Advance(time.Minute)
	e.audit(t, "host.connected", "user", map[string]any{"hostname": "pc-7", "os": "linux", "remote": "10.0.0.7:5000"})
	e.audit(t, "viewer.joined", "tina", map[string]any{"role": "technician"})
	e.audit(t, "consent.requested", "tina", map[string]any{"permissions": []string{"view", "control"}, "viewer": "tina"})
	e.audit(t, "consent.granted", "user", map[string]any{"viewer": "tina", "requested": []string{"view", "control"}, "granted": []string{"view"}})
	start := e.clock.Now()
	e.clock.Advance(2 * time.Minute)
	e.audit(t, "consent.timeout", "broker", map[string]any{"viewer": "tina", "requested": []string{"clipboard"}, "granted": nil})
	e.audit(t, "consent.denied", "user", map[string]any{"viewer": "tina", "requested": []string{"shell"}, "granted": nil})
	e.audit(t, "consent.not_shown", "broker", map[string]any{"viewer": "tina", "requested": []string{"files"}, "granted": nil})
	e.audit(t, "viewer.joined", "sam", map[string]any{"role": "technician"}) // turned away: joined, never let in
	e.audit(t, "viewer.joined", "lee", map[string]any{"role": "technician"})
	e.audit(t, "viewer.joined", "tina", map[string]any{"role": "technician"}) // back after a moment away
	e.audit(t, "consent.granted", "user", map[string]any{"viewer": "lee", "requested": []string{"view", "control"}, "granted": []string{"view", "control"}})
	e.audit(t, "consent.changed", "user", map[string]any{"change": "revoked control", "paused": false})
	e.audit(t, "consent.changed", "user", map[string]any{"change": "revoked file transfer", "paused": false}) // as the host words files
	e.audit(t, "consent.changed", "user", map[string]any{"change": "paused the session", "paused": true})
	e.audit(t, "file.transfer", "lee", map[string]any{"name": "driver.deb", "size": 2048, "sha256": "ab12", "direction": "upload", "path": "Downloads/Tether/driver.deb"})
	e.audit(t, "file.refused", "lee", map[string]any{"name": "shadow", "direction": "download", "code": "denied", "reason": "outside the shared folder"})
	e.audit(t, "shell.command", "lee", map[string]any{"channel": "shell-1", "command": "sudo dpkg -i driver.deb"})
	e.audit(t, "file.transfer", "lee", map[string]any{"name": "install.log", "size": 99, "sha256": "cd34", "direction": "download", "path": "install.log"})
	fileAt := e.clock.Now()
	e.audit(t, ClosingNotesAudit, "tina", map[string]any{"notes": "Printer driver reinstalled.\nUser happy."})
	e.clock.Advance(90 * time.Second)
	if err := e.store.EndSession(context.Background(), e.sess.ID, "technician", "The technician ended the session.", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.audit(t, "session.ended", "tina", map[string]any{"reason": "The technician ended the session.", "cause": "technician"})
	e.audit(t, "session.ended", "broker", map[string]any{"reason": "again"})

	want := []string{"session.created", "host.connected", "consent.granted", "session.started", "consent.denied", "consent.denied", "consent.denied",
		"consent.granted", "consent.revoked", "consent.revoked", "session.ended"}
	waitFor(t, "every event", func() bool { return len(all.requests()) >= len(want) && len(some.requests()) >= 1 })
	time.Sleep(50 * time.Millisecond)
	type envelope struct {
		ID   string
		Type string
		Data map[string]any
	}
	var got []envelope
	for _, r := range all.requests() {
		var env envelope
		if err := json.Unmarshal(r.body, &env); err != nil {
			t.Fatal(err)
		}
		got = append(got, env)
	}
	slices.SortStableFunc(got, func(a, b envelope) int { return slices.Index(want, a.Type) - slices.Index(want, b.Type) })
	var types []string
	ids := map[string]bool{}
	for _, g := range got {
		types = append(types, g.Type)
		ids[g.ID] = true
	}
	slices.Sort(types)
	sortedWant := slices.Clone(want)
	slices.Sort(sortedWant)
	if !slices.Equal(types, sortedWant) {
		t.Fatalf("events %v, want %v", types, sortedWant)
	}
	if len(ids) != len(got) {
		t.Error("event ids repeat")
	}
	if n := len(some.requests()); n != 1 || some.requests()[0].header.Get("Tether-Event") != "session.ended" {
		t.Fatalf("the session.ended-only endpoint got %d requests", n)
	}

	byType := map[string][]map[string]any{}
	for _, g := range got {
		byType[g.Type] = append(byType[g.Type], g.Data)
	}
	if h := byType["host.connected"][0]["host"].(map[string]any); h["hostname"] != "pc-7" || h["os"] != "linux" {
		t.Errorf("host.connected %v", byType["host.connected"][0])
	}
	if s := byType["session.started"][0]; s["viewer"] != "tina" || s["started_at"] != start.Format(time.RFC3339) {
		t.Errorf("session.started %v", s)
	}
	var reasons []any
	for _, d := range byType["consent.denied"] {
		reasons = append(reasons, d["reason"])
	}
	if !slices.Contains(reasons, "timeout") || !slices.Contains(reasons, "denied") || !slices.Contains(reasons, "not_shown") {
		t.Errorf("consent.denied reasons %v", reasons)
	}
	if r := byType["consent.revoked"]; r[0]["permission"] != "control" || r[1]["permission"] != "files" {
		t.Errorf("consent.revoked %v, want control then files", r)
	}

	ended := byType["session.ended"][0]
	data, _ := json.Marshal(ended)
	var se SessionEnded
	if err := json.Unmarshal(data, &se); err != nil {
		t.Fatal(err)
	}
	wantEnded := SessionEnded{
		SessionRef: SessionRef{SessionID: "s_1", TicketID: "INC-42", InitiatedBy: "technician", Technician: "tina"},
		CreatedAt:  t0, StartedAt: &start, EndedAt: e.clock.Now(), DurationSeconds: 210,
		EndReason: "The technician ended the session.", EndCause: "technician", EndedBy: "tina",
		PermissionsGranted: []string{"view", "control"}, Viewers: []string{"tina", "lee"},
		Joined:       []string{"tina", "sam", "lee"},
		ClosingNotes: "Printer driver reinstalled.\nUser happy.",
		FilesMoved: []FileMoved{
			{Name: "driver.deb", Size: 2048, SHA256: "ab12", Direction: "upload", Technician: "lee", At: fileAt},
			{Name: "install.log", Size: 99, SHA256: "cd34", Direction: "download", Technician: "lee", At: fileAt},
		},
		ShellCommands: []ShellCommand{{Command: "sudo dpkg -i driver.deb", Technician: "lee", At: fileAt}},
	}
	if se.StartedAt == nil || !se.StartedAt.Equal(start) {
		t.Errorf("started_at %v, want %v", se.StartedAt, start)
	}
	se.StartedAt = &start
	if !se.CreatedAt.Equal(t0) || !se.EndedAt.Equal(wantEnded.EndedAt) {
		t.Errorf("times %v %v", se.CreatedAt, se.EndedAt)
	}
	se.CreatedAt, se.EndedAt = wantEnded.CreatedAt, wantEnded.EndedAt
	if g, w := mustJSON(se), mustJSON(wantEnded); g != w {
		t.Errorf("session.ended\n got %s\nwant %s", g, w)
	}
}

func mustJSON(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

// TestSessionEndedNeverStarted: a session nobody joined ends with zero
// duration and no start.
func TestSessionEndedNeverStarted(t *testing.T) {
	e := newEnv(t, nil)
	rcv := newReceiver(t, nil)
	e.endpoint(t, rcv.URL, SessionEndedType)
	e.clock.Advance(time.Minute)
	e.store.EndSession(context.Background(), e.sess.ID, "technician", "The technician ended the session.", e.clock.Now())
	e.audit(t, "session.ended", "tina", map[string]any{"reason": "The technician ended the session."})
	waitFor(t, "session.ended", func() bool { return len(rcv.requests()) == 1 })
	var env struct{ Data map[string]any }
	json.Unmarshal(rcv.requests()[0].body, &env)
	if env.Data["started_at"] != nil || env.Data["duration_seconds"] != float64(0) || env.Data["closing_notes"] != "" ||
		len(env.Data["permissions_granted"].([]any)) != 0 || env.Data["ended_at"] != "2026-11-23T12:01:00Z" ||
		len(env.Data["files_moved"].([]any)) != 0 || len(env.Data["shell_commands"].([]any)) != 0 {
		t.Fatalf("data %v", env.Data)
	}
}

// logBuffer collects a dispatcher's log for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// refuseAttempts makes the broker's database refuse to record webhook
// attempts, as a full disk or another process holding the write lock
// would, until allow is called. It changes the database from a second
// connection, as another process would.
func refuseAttempts(t *testing.T, path string) (allow func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TRIGGER refuse_attempts BEFORE INSERT ON webhook_attempts
		BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := db.Exec("DROP TRIGGER refuse_attempts"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAttemptKeptWhileDatabaseRefusesWrites: the receiver takes a
// delivery, and the database refuses to record the attempt. The delivery
// is not sent again while it refuses (it used to go out at every poll,
// never counted); the failure is logged once, and the attempt is recorded
// as it was once the database takes writes again.
func TestAttemptKeptWhileDatabaseRefusesWrites(t *testing.T) {
	var logs logBuffer
	e := newEnv(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	rcv := newReceiver(t, nil)
	ep := e.endpoint(t, rcv.URL, SessionCreatedType)
	allow := refuseAttempts(t, e.path)
	e.audit(t, "session.created", "tina", map[string]any{})
	waitFor(t, "the refused record logged", func() bool { return strings.Contains(logs.String(), "record webhook attempt") })
	time.Sleep(100 * time.Millisecond) // twenty polls
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("the receiver took the delivery once and was sent it %d times while the database refused writes", n)
	}
	logged := 0
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "level=ERROR") && strings.Contains(line, "record webhook attempt") {
			logged++
		}
	}
	if logged != 1 {
		t.Errorf("the refused record is logged %d times, want once:\n%s", logged, logs.String())
	}
	allow()
	var list []*store.WebhookDelivery
	var attempts map[string][]*store.WebhookAttempt
	waitFor(t, "the attempt recorded", func() bool { list, attempts = e.deliveries(t, ep.ID); return list[0].State != store.DeliveryPending })
	if len(list) != 1 || list[0].State != store.DeliverySucceeded || list[0].Attempts != 1 || len(attempts[list[0].ID]) != 1 ||
		attempts[list[0].ID][0].StatusCode != http.StatusNoContent || !attempts[list[0].ID][0].At.Equal(t0) {
		t.Errorf("delivery %+v, attempts %v; want one attempt, recorded as it happened", list[0], attempts[list[0].ID])
	}
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestSessionEndedAfterCrash: the broker stops, or the database refuses
// the event, after a session's end is stored and before its session.ended
// event is. The dispatcher finds such sessions a minute on and sends their
// session.ended all the same, saying how they ended as the hub would have;
// one that cannot be sent does not hold up the others; an endpoint
// registered after the session ended hears nothing of it.
func TestSessionEndedAfterCrash(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	rcv := newReceiver(t, nil)
	ep := e.endpoint(t, rcv.URL, SessionEndedType)

	// s_0 ended first, and its audit entry cannot be read: it cannot be
	// sent, and must not hold up the others.
	s0 := &store.Session{ID: "s_0", CodeHash: "h0", CodeExpiresAt: t0.Add(time.Hour), CreatedBy: e.sess.CreatedBy, TicketID: "INC-41",
		State: store.StateWaiting, CreatedAt: t0, Permissions: []string{"view"}}
	if err := e.store.CreateSession(ctx, s0); err != nil {
		t.Fatal(err)
	}
	if err := e.store.EndSession(ctx, "s_0", "technician", "The technician ended the session.", t0.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := e.store.AddEvent(ctx, &store.Event{Session: "s_0", At: t0.Add(30 * time.Second), Actor: "tina", Type: "session.ended", Detail: `{"cause":`}); err != nil {
		t.Fatal(err)
	}

	// The technician ends s_1: the end and its audit entry are stored,
	// then the broker is killed.
	e.clock.Advance(time.Minute)
	if err := e.store.EndSession(ctx, e.sess.ID, "technician", "The technician ended the session.", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.store.AddEvent(ctx, &store.Event{Session: e.sess.ID, At: e.clock.Now(), Actor: "tina", Type: "session.ended",
		Detail: `{"reason":"The technician ended the session.","cause":"technician"}`}); err != nil {
		t.Fatal(err)
	}
	// The code of s_2 expires: the expiry pass ends it and the broker is
	// killed before the audit entry is written.
	s2 := &store.Session{ID: "s_2", CodeHash: "h2", CodeExpiresAt: t0.Add(2 * time.Minute), CreatedBy: e.sess.CreatedBy, TicketID: "INC-43",
		State: store.StateWaiting, CreatedAt: t0, Permissions: []string{"view"}}
	if err := e.store.CreateSession(ctx, s2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.EndExpiredCodes(ctx, "code_expired", "The support code expired before the user joined.", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(90 * time.Second)
	late := e.endpoint(t, rcv.URL+"/late", SessionEndedType)
	e.clock.Advance(2 * time.Minute)

	waitFor(t, "both session.ended", func() bool { return len(rcv.requests()) == 2 })
	got := map[string]map[string]any{}
	for _, r := range rcv.requests() {
		var env struct {
			Type string
			Data map[string]any
		}
		if err := json.Unmarshal(r.body, &env); err != nil || env.Type != SessionEndedType || r.header.Get(EventHeader) != SessionEndedType {
			t.Fatalf("request %s: %v", r.body, err)
		}
		got[env.Data["session_id"].(string)] = env.Data
	}
	if d := got["s_1"]; d == nil || d["end_cause"] != "technician" || d["ended_by"] != "tina" ||
		d["end_reason"] != "The technician ended the session." || d["ended_at"] != "2026-11-23T12:01:00Z" || d["ticket_id"] != "INC-42" {
		t.Errorf("session.ended of s_1: %v", d)
	}
	// Without an audit entry, the cause comes from the session's row.
	if d := got["s_2"]; d == nil || d["end_cause"] != "code_expired" || d["ended_by"] != nil ||
		d["end_reason"] != "The support code expired before the user joined." || d["ended_at"] != "2026-11-23T12:02:00Z" {
		t.Errorf("session.ended of s_2: %v", d)
	}
	if list, _ := e.deliveries(t, late.ID); len(list) != 0 {
		t.Errorf("an endpoint registered after the sessions ended got %d deliveries", len(list))
	}
	// Each is sent once: a minute later they are not found again.
	e.clock.Advance(2 * time.Minute)
	time.Sleep(50 * time.Millisecond)
	if list, _ := e.deliveries(t, ep.ID); len(list) != 2 || len(rcv.requests()) != 2 {
		t.Errorf("%d deliveries and %d requests, want 2 of each", len(list), len(rcv.requests()))
	}
}

// TestTerminalOnlySessionStarted: a session in which the user allowed a
// terminal and not the screen started all the same, as the API's live_at
// says: session.started goes out, and the work log counts its time.
func TestTerminalOnlySessionStarted(t *testing.T) {
	e := newEnv(t, nil)
	rcv := newReceiver(t, nil)
	e.endpoint(t, rcv.URL, SessionStartedType, SessionEndedType)
	e.audit(t, "consent.granted", "user", map[string]any{"viewer": "tina", "requested": []string{"shell"}, "granted": []string{"shell"}})
	start := e.clock.Now()
	e.clock.Advance(15 * time.Minute)
	e.store.EndSession(context.Background(), e.sess.ID, "technician", "The technician ended the session.", e.clock.Now())
	e.audit(t, "session.ended", "tina", map[string]any{"reason": "The technician ended the session.", "cause": "technician"})
	waitFor(t, "session.started and session.ended", func() bool { return len(rcv.requests()) == 2 })
	for _, r := range rcv.requests() {
		var env struct {
			Type string
			Data map[string]any
		}
		json.Unmarshal(r.body, &env)
		if env.Data["started_at"] != start.UTC().Format(time.RFC3339) {
			t.Errorf("%s: started_at %v, want %s", env.Type, env.Data["started_at"], start.UTC().Format(time.RFC3339))
		}
		if env.Type == SessionEndedType && env.Data["duration_seconds"] != float64(900) {
			t.Errorf("session.ended: duration_seconds %v, want 900", env.Data["duration_seconds"])
		}
	}
}

func TestCheckURL(t *testing.T) {
	names := map[string][]netip.Addr{
		"hooks.example":    {netip.MustParseAddr("203.0.113.10")},
		"intranet.example": {netip.MustParseAddr("10.1.2.3")},
		"metadata.example": {netip.MustParseAddr("169.254.169.254")},
		"mixed.example":    {netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("169.254.169.254")},
		"local.example":    {netip.MustParseAddr("127.0.0.1")},
	}
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, ok := names[host]; ok {
			return a, nil
		}
		return nil, errors.New("no such host")
	}
	for _, loopback := range []bool{false, true} {
		cfg := Config{AllowLoopback: loopback, LookupIP: lookup}
		for _, c := range []struct {
			url, code string
			loopback  string // the code when loopback is allowed, if different
		}{
			{"https://hooks.example/tether", "", ""},
			{"https://intranet.example:8443/api/tether?token=abc", "", ""},
			{"https://203.0.113.10/x", "", ""},
			{"http://hooks.example/tether", "invalid_url", ""},
			{"ftp://hooks.example/", "invalid_url", ""},
			{"hooks.example/tether", "invalid_url", ""},
			{"", "invalid_url", ""},
			{"https://" + strings.Repeat("a", 2050), "invalid_url", ""},
			{"https://user:pw@hooks.example/", "invalid_url", ""},
			{"https://hooks.example/#frag", "invalid_url", ""},
			{"https://hooks.example:99999/", "invalid_url", ""},
			{"https://nowhere.example/", "url_unresolvable", ""},
			{"https://169.254.169.254/latest/meta-data/", "url_not_allowed", ""},
			{"https://[::ffff:169.254.169.254]/", "url_not_allowed", ""},
			{"https://[fe80::1]/", "url_not_allowed", ""},
			{"https://[fd00:ec2::254]/", "url_not_allowed", ""},
			{"https://[fd20:ce::254]/", "url_not_allowed", ""},         // Google Cloud over IPv6
			{"https://[fd00:ec2::23]/", "url_not_allowed", ""},         // AWS EKS Pod Identity
			{"https://[fd00:42::42]/", "url_not_allowed", ""},          // Scaleway over IPv6
			{"https://[64:ff9b:1::a9fe:a9fe]/", "url_not_allowed", ""}, // through a local-use NAT64 prefix
			{"https://[::ffff:0:a9fe:a9fe]/", "url_not_allowed", ""},   // IPv4-translated (SIIT)
			{"https://[64:ff9b::a9fe:a9fe]/", "url_not_allowed", ""},   // 169.254.169.254 through NAT64
			{"https://[2002:a9fe:a9fe::1]/", "url_not_allowed", ""},    // the same through 6to4
			{"https://[64:ff9b::7f00:1]/", "url_not_allowed", ""},      // loopback, never through a gateway
			{"https://[64:ff9b::cb00:710a]/", "", ""},                  // 203.0.113.10 through NAT64
			{"https://metadata.example/", "url_not_allowed", ""},
			{"https://mixed.example/", "url_not_allowed", ""},
			{"https://0.0.0.0/", "url_not_allowed", ""},
			{"https://224.0.0.1/", "url_not_allowed", ""},
			{"http://127.0.0.1:8080/hook", "invalid_url", "ok"},
			{"https://127.0.0.1:8080/hook", "url_not_allowed", "ok"},
			{"http://localhost:8080/hook", "invalid_url", "url_unresolvable"}, // the test resolver knows no localhost
			{"https://local.example/", "url_not_allowed", "ok"},
			{"http://[::1]:8080/", "invalid_url", "ok"},
			{"http://local.example/", "invalid_url", ""}, // http only by loopback name
		} {
			want := c.code
			if loopback && c.loopback != "" {
				want = c.loopback
			}
			if want == "ok" {
				want = ""
			}
			_, err := cfg.CheckURL(context.Background(), c.url)
			var fe *FieldError
			switch {
			case want == "" && err != nil:
				t.Errorf("loopback %v: %s refused: %v", loopback, c.url, err)
			case want != "" && !errors.As(err, &fe):
				t.Errorf("loopback %v: %s: %v, want %s", loopback, c.url, err, want)
			case want != "" && (fe.Code != want || fe.Field != "url"):
				t.Errorf("loopback %v: %s: %s (%s), want %s", loopback, c.url, fe.Code, fe.Message, want)
			case !loopback && want != "" && strings.Contains(fe.Message, "this machine") && strings.Contains(fe.Message, "http"):
				// The shipped broker never takes http: it must not say it does.
				t.Errorf("%s: %q offers http for this machine, which the broker refuses", c.url, fe.Message)
			}
		}
	}
}

// TestDialRechecks: a registered name that later resolves to the metadata
// service is refused at connection time, not called.
func TestDialRechecks(t *testing.T) {
	var mu sync.Mutex
	target := netip.MustParseAddr("127.0.0.1")
	rcv := newReceiver(t, nil)
	port := rcv.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	e := newEnv(t, func(c *Config) {
		c.LookupIP = func(context.Context, string) ([]netip.Addr, error) {
			mu.Lock()
			defer mu.Unlock()
			return []netip.Addr{target}, nil
		}
		c.MaxAttempts = 1
	})
	// The name resolves to the receiver when it is registered.
	ep := e.endpoint(t, "https://hooks.example:"+strconv.Itoa(int(port))+"/", SessionCreatedType)
	mu.Lock()
	target = netip.MustParseAddr("169.254.169.254")
	mu.Unlock()
	e.audit(t, "session.created", "tina", map[string]any{})
	var list []*store.WebhookDelivery
	waitFor(t, "the refusal", func() bool { list, _ = e.deliveries(t, ep.ID); return list[0].State == store.DeliveryFailed })
	if !strings.Contains(list[0].LastError, "link-local") {
		t.Fatalf("error %q", list[0].LastError)
	}
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("%d requests reached the receiver", n)
	}
}

func TestEndpointValidation(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, c := range []struct {
		spec        EndpointSpec
		field, code string
	}{
		{EndpointSpec{URL: "http://example.com/", Events: []string{"session.ended"}}, "url", "invalid_url"},
		{EndpointSpec{URL: "http://127.0.0.1:9/", Events: nil}, "events", "invalid_events"},
		{EndpointSpec{URL: "http://127.0.0.1:9/", Events: []string{"session.exploded"}}, "events", "invalid_events"},
		{EndpointSpec{URL: "http://127.0.0.1:9/", Events: []string{"session.ended", "session.ended"}}, "events", "invalid_events"},
		{EndpointSpec{URL: "http://127.0.0.1:9/", Events: []string{"session.ended"}, Description: strings.Repeat("x", 257)}, "description", "invalid_description"},
		{EndpointSpec{URL: "http://127.0.0.1:9/", Events: []string{"session.ended"}, Description: "two\nlines"}, "description", "invalid_description"},
	} {
		_, err := e.d.CreateEndpoint(ctx, c.spec, e.admin)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || fe.Code != c.code {
			t.Errorf("%+v: %v, want %s %s", c.spec, err, c.field, c.code)
		}
	}
	ep, err := e.d.CreateEndpoint(ctx, EndpointSpec{URL: "http://127.0.0.1:9/", Events: []string{RecordingReadyType}, Description: "Jira"}, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{"nope"}
	if _, err := e.d.UpdateEndpoint(ctx, ep.ID, EndpointUpdate{Events: &bad}, e.admin); err == nil {
		t.Error("update with a bad event accepted")
	}
	if err := e.d.DeleteEndpoint(ctx, ep.ID, e.admin); err != nil {
		t.Fatal(err)
	}
	if err := e.d.DeleteEndpoint(ctx, ep.ID, e.admin); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}
