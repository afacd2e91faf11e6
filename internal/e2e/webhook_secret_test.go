package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/internal/dial"
)

// TestWebhookSecretRotation: an admin gives the endpoint a new secret
// without deleting it: the new secret is shown once, the next events are
// signed with it and, for a day, with the old one too, so the ticket
// system that has not saved the new one yet goes on taking them; the
// endpoint keeps its id and delivery history. A secret that leaked can be
// stopped at once. Only admins may, and a browser login needs its CSRF
// token.
func TestWebhookSecretRotation(t *testing.T) {
	b, _ := webhookBroker(t)
	sc := newSpecChecker(t, b)
	hc := sc.client()
	api := b.URL() + "/api/v1"
	ctx := context.Background()
	for _, u := range []struct{ name, role string }{{"tina", "technician"}, {"ada", "admin"}} {
		if err := b.CreateUser(ctx, u.name, u.name+"-password-1", u.role); err != nil {
			t.Fatal(err)
		}
	}
	ts := newTicketSystem(t)
	id := register(t, b, hc, ts)
	ts.mu.Lock()
	oldSecret := ts.secret
	ts.mu.Unlock()

	status, out := apiCall(t, hc, "POST", api+"/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-1"}}`, nil)
	if status != 201 {
		t.Fatalf("create session: %d %v", status, out)
	}
	ts.wait(t, out["id"].(string), "session.created")

	status, out = apiCall(t, hc, "POST", api+"/webhooks/"+id+"/secret", b.admin.APIKey, "", nil)
	newSecret, _ := out["secret"].(string)
	if status != 200 || out["id"] != id || !strings.HasPrefix(newSecret, "whsec_") || newSecret == oldSecret {
		t.Fatalf("new secret: %d %v", status, out)
	}
	oldUntil, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(out["old_secret_expires_at"]))
	if d := time.Until(oldUntil); d < 23*time.Hour || d > 24*time.Hour {
		t.Errorf("the old secret works until %v, want a day from now", out["old_secret_expires_at"])
	}
	if status, out = apiCall(t, hc, "GET", api+"/webhooks/"+id, b.admin.APIKey, "", nil); status != 200 || out["secret"] != nil || out["old_secret_expires_at"] == nil {
		t.Fatalf("the new secret is shown again, or the old one's end is not: %d %v", status, out)
	}
	// The ticket system has not saved the new secret yet: its receiver,
	// refusing requests it cannot verify, still takes the next event.
	status, out = apiCall(t, hc, "POST", api+"/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-2"}}`, nil)
	if status != 201 {
		t.Fatalf("create session: %d %v", status, out)
	}
	ts.wait(t, out["id"].(string), "session.created")
	// Then it saves the new one, and the next event is taken too.
	ts.mu.Lock()
	ts.secret = newSecret
	ts.mu.Unlock()
	status, out = apiCall(t, hc, "POST", api+"/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-3"}}`, nil)
	if status != 201 {
		t.Fatalf("create session: %d %v", status, out)
	}
	ts.wait(t, out["id"].(string), "session.created")
	waitFor(t, 10*time.Second, func() bool {
		_, out = apiCall(t, hc, "GET", api+"/webhooks/"+id+"/deliveries", b.admin.APIKey, "", nil)
		list, _ := out["deliveries"].([]any)
		return len(list) == 3 && !slices.ContainsFunc(list, func(d any) bool { return d.(map[string]any)["state"] != "succeeded" })
	})

	// The secret leaked: a new one with no grace stops the old one at once.
	status, out = apiCall(t, hc, "POST", api+"/webhooks/"+id+"/secret", b.admin.APIKey, `{"grace_seconds":0}`, nil)
	if status != 200 || out["old_secret_expires_at"] != nil || out["secret"] == newSecret {
		t.Fatalf("new secret without grace: %d %v", status, out)
	}
	ts.mu.Lock()
	ts.secret = out["secret"].(string)
	ts.mu.Unlock()
	status, out = apiCall(t, hc, "POST", api+"/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-4"}}`, nil)
	if status != 201 {
		t.Fatalf("create session: %d %v", status, out)
	}
	ts.wait(t, out["id"].(string), "session.created")
	for _, body := range []string{`{"grace_seconds":-1}`, `{"grace_seconds":86401}`} {
		if status, out = apiCall(t, hc, "POST", api+"/webhooks/"+id+"/secret", b.admin.APIKey, body, nil); status != 400 || errCode(out) != "invalid_grace" {
			t.Errorf("new secret with %s: %d %v", body, status, out)
		}
	}

	if status, out = apiCall(t, hc, "POST", api+"/webhooks/wh_nope/secret", b.admin.APIKey, "", nil); status != 404 || errCode(out) != "not_found" {
		t.Errorf("new secret for no endpoint: %d %v", status, out)
	}
	status, out = apiCall(t, hc, "POST", api+"/login", "", `{"username":"tina","password":"tina-password-1"}`, nil)
	if status != 200 {
		t.Fatalf("login: %d %v", status, out)
	}
	if status, out = apiCall(t, hc, "POST", api+"/webhooks/"+id+"/secret", out["token"].(string), "", nil); status != 403 || errCode(out) != "forbidden" {
		t.Errorf("a technician asks for a new secret: %d %v", status, out)
	}

	tlsCfg, _ := dial.TLSConfig(b.CAFile())
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Jar: jar}
	status, out = apiCall(t, browser, "POST", api+"/login", "", `{"username":"ada","password":"ada-password-1"}`, nil)
	if status != 200 {
		t.Fatalf("login: %d %v", status, out)
	}
	csrf := out["csrf_token"].(string)
	if status, out = apiCall(t, browser, "POST", api+"/webhooks/"+id+"/secret", "", "", nil); status != 403 || errCode(out) != "csrf_failed" {
		t.Errorf("browser without CSRF token: %d %v", status, out)
	}
	if status, out = apiCall(t, browser, "POST", api+"/webhooks/"+id+"/secret", "", "", map[string]string{"X-CSRF-Token": csrf}); status != 200 || out["secret"] == newSecret {
		t.Errorf("browser with CSRF token: %d %v", status, out)
	}
}
