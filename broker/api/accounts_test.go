package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/auth"
)

// TestTurnOffTwoFactorWhenOff: asking to turn off two-factor
// authentication on an account that does not use it is answered that it
// is not on, not that the code given is wrong, which sends the user
// looking for a code they never had.
func TestTurnOffTwoFactorWhenOff(t *testing.T) {
	b := newTestBroker(t)
	_, key := b.user("tina", "technician")
	status, out := b.call("DELETE", "/api/v1/me/totp", key, map[string]any{"password": testPassword, "code": "123456"})
	e, _ := out["error"].(map[string]any)
	if status != http.StatusConflict || e["code"] != "totp_not_enabled" {
		t.Fatalf("turning off two-factor that is not on: %d %v, want 409 totp_not_enabled", status, out)
	}
}

// TestTwoAdminsChangeOneAccountAtOnce: one admin makes an account a
// supervisor while another disables it, at the same moment. Both changes
// hold: neither request writes back the field it did not name as it read
// it a moment before.
func TestTwoAdminsChangeOneAccountAtOnce(t *testing.T) {
	b := newTestBroker(t)
	_, ann := b.user("ann", "admin")
	_, bob := b.user("bob", "admin")
	ctx := context.Background()
	for round := range 40 {
		name := fmt.Sprintf("tina%d", round)
		b.user(name, "technician")
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, change := range []struct {
			key  string
			body map[string]any
		}{{ann, map[string]any{"role": "supervisor"}}, {bob, map[string]any{"disabled": true}}} {
			wg.Go(func() {
				<-start
				if status, out := b.call("PATCH", "/api/v1/users/"+name, change.key, change.body); status != http.StatusOK {
					t.Errorf("PATCH %v: %d %v", change.body, status, out)
				}
			})
		}
		close(start)
		wg.Wait()
		u, err := b.store.UserByName(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if u.Role != "supervisor" || !u.Disabled {
			t.Fatalf("round %d: after a role change and a disable at once the account is %s, disabled %v; want supervisor, disabled", round, u.Role, u.Disabled)
		}
	}
}

// TestKeysListSaysWhichDoNotWork: the list of API keys tells a key whose
// account is disabled, and the scopes an account's role no longer holds
// (an admin made a technician), from keys that work: the broker refuses
// both, and an admin checking what integrations can do must see it.
func TestKeysListSaysWhichDoNotWork(t *testing.T) {
	b := newTestBroker(t)
	_, admin := b.user("ann", "admin")
	_, pat := b.user("pat", "admin", "users:admin", "sessions:read")
	_, lee := b.user("lee", "technician", "sessions:read")
	for _, change := range []struct {
		name string
		body map[string]any
	}{{"pat", map[string]any{"role": "technician"}}, {"lee", map[string]any{"disabled": true}}} {
		if status, out := b.call("PATCH", "/api/v1/users/"+change.name, admin, change.body); status != http.StatusOK {
			t.Fatalf("PATCH %s %v: %d %v", change.name, change.body, status, out)
		}
	}
	if status, _ := b.call("GET", "/api/v1/users", pat, nil); status != http.StatusForbidden {
		t.Fatalf("pat's users:admin after the demotion: %d, want 403", status)
	}
	if status, _ := b.call("GET", "/api/v1/sessions", lee, nil); status != http.StatusUnauthorized {
		t.Fatalf("lee's key while disabled: %d, want 401", status)
	}
	status, out := b.call("GET", "/api/v1/keys", admin, nil)
	if status != http.StatusOK {
		t.Fatalf("list keys: %d %v", status, out)
	}
	got := map[string]string{}
	for _, k := range out["keys"].([]any) {
		k := k.(map[string]any)
		got[k["username"].(string)] = fmt.Sprint("disabled=", k["account_disabled"], " dormant=", k["dormant_scopes"])
	}
	want := map[string]string{
		"ann": "disabled=false dormant=[]",
		"pat": "disabled=false dormant=[users:admin]",
		"lee": "disabled=true dormant=[]",
	}
	for user, w := range want {
		if got[user] != w {
			t.Errorf("%s's key: %s, want %s", user, got[user], w)
		}
	}
}

// TestEnrolmentCodeGuessesPause: wrong codes to confirm a two-factor
// enrolment are answered 400 bad_totp, and after ten of them 429
// locked_out, even the right code.
func TestEnrolmentCodeGuessesPause(t *testing.T) {
	b := newTestBroker(t)
	b.user("tina", "technician")
	status, out := b.call("POST", "/api/v1/login", "", map[string]any{"username": "tina", "password": testPassword})
	token, _ := out["token"].(string)
	if status != http.StatusOK || token == "" {
		t.Fatalf("login: %d %v", status, out)
	}
	status, out = b.call("POST", "/api/v1/me/totp", token, map[string]any{"password": testPassword})
	secret, _ := out["secret"].(string)
	if status != http.StatusOK || secret == "" {
		t.Fatalf("begin enrolment: %d %v", status, out)
	}
	code := func(skew time.Duration) string {
		c, _ := auth.TOTPCode(secret, time.Now().Add(skew))
		return c
	}
	// A code right in no step near now, while the test runs.
	wrong := "000000"
	if slices.Contains([]string{code(-time.Minute), code(-30 * time.Second), code(0), code(30 * time.Second), code(time.Minute)}, wrong) {
		wrong = "111111"
	}
	for i := range 10 {
		status, out := b.call("POST", "/api/v1/me/totp/confirm", token, map[string]any{"code": wrong})
		if e, _ := out["error"].(map[string]any); status != http.StatusBadRequest || e["code"] != "bad_totp" {
			t.Fatalf("wrong code %d: %d %v, want 400 bad_totp", i, status, out)
		}
	}
	status, out = b.call("POST", "/api/v1/me/totp/confirm", token, map[string]any{"code": code(0)})
	if e, _ := out["error"].(map[string]any); status != http.StatusTooManyRequests || e["code"] != "locked_out" {
		t.Fatalf("the right code after ten wrong ones: %d %v, want 429 locked_out", status, out)
	}
}

// TestKeyExpires: a key created with a last moment works until then and is
// refused after it with a reason of its own, and the list says so; a last
// moment in the past, too far off or not a time is refused by field.
func TestKeyExpires(t *testing.T) {
	b := newTestBroker(t)
	_, admin := b.user("ann", "admin")
	for _, bad := range []string{"tomorrow", time.Now().Add(-time.Minute).Format(time.RFC3339), time.Now().AddDate(6, 0, 0).Format(time.RFC3339)} {
		status, out := b.call("POST", "/api/v1/keys", admin, map[string]any{"name": "k", "scopes": []string{"sessions:read"}, "expires_at": bad})
		e, _ := out["error"].(map[string]any)
		fields, _ := e["fields"].([]any)
		if status != http.StatusBadRequest || len(fields) != 1 || fields[0].(map[string]any)["field"] != "expires_at" {
			t.Errorf("expires_at %q: %d %v, want 400 naming expires_at", bad, status, out)
		}
	}
	last := time.Now().Add(1500 * time.Millisecond).UTC().Truncate(time.Second).Add(time.Second)
	status, out := b.call("POST", "/api/v1/keys", admin, map[string]any{"name": "ServiceNow", "scopes": []string{"sessions:read"}, "expires_at": last.Format(time.RFC3339)})
	key, _ := out["key"].(string)
	if status != http.StatusCreated || key == "" || out["expires_at"] != last.Format(time.RFC3339) || out["expired"] != false {
		t.Fatalf("create a key with a last moment: %d %v", status, out)
	}
	if status, out := b.call("GET", "/api/v1/sessions", key, nil); status != http.StatusOK {
		t.Fatalf("the key before its last moment: %d %v", status, out)
	}
	time.Sleep(time.Until(last) + 50*time.Millisecond)
	status, out = b.call("GET", "/api/v1/sessions", key, nil)
	if e, _ := out["error"].(map[string]any); status != http.StatusUnauthorized || e["code"] != "key_expired" {
		t.Fatalf("the key after its last moment: %d %v, want 401 key_expired", status, out)
	}
	_, out = b.call("GET", "/api/v1/keys", admin, nil)
	for _, k := range out["keys"].([]any) {
		k := k.(map[string]any)
		want := map[string]any{"ServiceNow": true, "test": false}[k["name"].(string)]
		if k["expired"] != want || (k["name"] == "test") != (k["expires_at"] == nil) {
			t.Errorf("listed key %v: expired %v (want %v), expires_at %v", k["name"], k["expired"], want, k["expires_at"])
		}
	}
}
