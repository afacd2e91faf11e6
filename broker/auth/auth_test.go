package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/store"
)

func TestPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q does not use argon2id with OWASP parameters", h)
	}
	if ok, err := CheckPassword(h, "correct horse"); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, _ := CheckPassword(h, "wrong"); ok {
		t.Fatal("wrong password accepted")
	}
	if _, err := CheckPassword("$bcrypt$x", "a"); err == nil {
		t.Fatal("foreign hash accepted")
	}
}

func newAuth(t *testing.T, now func() time.Time) *Authenticator {
	t.Helper()
	s, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a, err := New(Config{Store: s, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLoginLockoutAndCSRF(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	if _, err := a.CreateUser(ctx, "tech", "s3cret-pass", RoleTechnician); err != nil {
		t.Fatal(err)
	}
	for range maxFailures {
		if _, _, _, err := a.Login(ctx, "tech", "nope"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, _, _, err := a.Login(ctx, "tech", "s3cret-pass"); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("after %d failures the right password must wait: %v", maxFailures, err)
	}
	now = now.Add(lockoutFor + time.Second)
	token, login, _, err := a.Login(ctx, "tech", "s3cret-pass")
	if err != nil {
		t.Fatal(err)
	}

	r := httptest.NewRequest("POST", "/api/v1/sessions", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: token})
	p, err := a.Authenticate(r)
	if err != nil || !p.Cookie || p.User.Username != "tech" {
		t.Fatalf("cookie auth: %+v %v", p, err)
	}
	if CheckCSRF(p, r) {
		t.Fatal("POST with the cookie and no CSRF token accepted")
	}
	r.Header.Set("X-CSRF-Token", "forged")
	if CheckCSRF(p, r) {
		t.Fatal("forged CSRF token accepted")
	}
	r.Header.Set("X-CSRF-Token", login.CSRF)
	if !CheckCSRF(p, r) {
		t.Fatal("right CSRF token refused")
	}

	// The login expires.
	now = now.Add(13 * time.Hour)
	if _, err := a.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired login: %v", err)
	}
}

func TestAPIKey(t *testing.T) {
	ctx := context.Background()
	a := newAuth(t, nil)
	u, err := a.CreateUser(ctx, "admin", "pw-long-enough", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	key, err := a.CreateAPIKey(ctx, u, "ticket system")
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	p, err := a.Authenticate(r)
	if err != nil || p.User.ID != u.ID || p.Cookie {
		t.Fatalf("API key auth: %+v %v", p, err)
	}
	if !CheckCSRF(p, r) {
		t.Fatal("bearer requests need no CSRF token")
	}
	r.Header.Set("Authorization", "Bearer "+key+"x")
	if _, err := a.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("wrong key: %v", err)
	}
}
