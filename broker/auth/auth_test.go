package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
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
		if _, _, _, err := a.Login(ctx, "192.0.2.1", "tech", "nope", ""); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, _, _, err := a.Login(ctx, "192.0.2.1", "tech", "s3cret-pass", ""); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("after %d failures the right password must wait: %v", maxFailures, err)
	}
	now = now.Add(lockoutFor + time.Second)
	token, login, _, err := a.Login(ctx, "192.0.2.1", "tech", "s3cret-pass", "")
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

// adminKey makes an admin and an API key of theirs for sessions:create,
// working until expires (zero: until revoked), and a request with it.
func adminKey(t *testing.T, a *Authenticator, expires time.Time) (*store.User, *store.APIKey, *http.Request) {
	t.Helper()
	ctx := context.Background()
	u, err := a.CreateUser(ctx, "admin", "pw-long-enough", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	k, key, err := a.CreateAPIKey(ctx, u, "ticket system", []string{ScopeSessionsCreate}, expires)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	return u, k, r
}

func TestAPIKey(t *testing.T) {
	a := newAuth(t, nil)
	u, _, r := adminKey(t, a, time.Time{})
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	p, err := a.Authenticate(r)
	if err != nil || p.User.ID != u.ID || p.Cookie {
		t.Fatalf("API key auth: %+v %v", p, err)
	}
	if !p.Can(ScopeSessionsCreate) || p.Can(ScopeSessionsRead) || p.Can(ScopeUsersAdmin) {
		t.Fatalf("a key scoped to sessions:create acts beyond it: %v", p.Scopes)
	}
	if !CheckCSRF(p, r) {
		t.Fatal("bearer requests need no CSRF token")
	}
	r.Header.Set("Authorization", "Bearer "+key+"x")
	if _, err := a.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestAPIKeyExpires(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	last := now.Add(30 * 24 * time.Hour)
	u, _, r := adminKey(t, a, last)
	now = last.Add(-time.Millisecond)
	p, err := a.Authenticate(r)
	if err != nil || !p.KeyExpiresAt.Equal(last) {
		t.Fatalf("a key on its last day: %+v %v", p, err)
	}
	now = last
	if _, err := a.Authenticate(r); !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("a key past its last moment: %v, want ErrKeyExpired", err)
	}
	// One without a last day works as long as it is not revoked.
	_, forever, err := a.CreateAPIKey(ctx, u, "script", []string{ScopeSessionsCreate}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * 365 * 24 * time.Hour)
	r.Header.Set("Authorization", "Bearer "+forever)
	if p, err := a.Authenticate(r); err != nil || !p.KeyExpiresAt.IsZero() {
		t.Fatalf("a key without a last day, ten years on: %+v %v", p, err)
	}
}

// TestAPIKeyUseRecordedOnceAMinute: a key's last use is written when it is
// a minute old or more, not at each call of a script that polls.
func TestAPIKeyUseRecordedOnceAMinute(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	_, k, r := adminKey(t, a, time.Time{})
	lastUse := func() time.Time {
		t.Helper()
		got, err := a.cfg.Store.APIKeyByHash(ctx, k.Hash)
		if err != nil {
			t.Fatal(err)
		}
		return got.LastUsedAt
	}
	first := now
	for _, step := range []struct {
		after time.Duration
		want  time.Time
	}{
		{0, first},
		{10 * time.Second, first},
		{59 * time.Second, first},
		{61 * time.Second, first.Add(61 * time.Second)},
	} {
		now = first.Add(step.after)
		if _, err := a.Authenticate(r); err != nil {
			t.Fatal(err)
		}
		if got := lastUse(); !got.Equal(step.want) {
			t.Errorf("a call %v after the first: last use %v, want %v", step.after, got, step.want)
		}
	}
}

func TestAPIKeyScopesAndRevocation(t *testing.T) {
	ctx := context.Background()
	a := newAuth(t, nil)
	tech, _ := a.CreateUser(ctx, "tech", "pw-long-enough", RoleTechnician)
	for _, scopes := range [][]string{nil, {"sessions:everything"}, {ScopeUsersAdmin}, {ScopeSessionsRead, ScopeSessionsRead}} {
		if _, _, err := a.CreateAPIKey(ctx, tech, "k", scopes, time.Time{}); !errors.Is(err, ErrBadScopes) {
			t.Errorf("scopes %v for a technician: %v, want ErrBadScopes", scopes, err)
		}
	}
	k, key, err := a.CreateAPIKey(ctx, tech, "k", []string{ScopeSessionsRead}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	if _, err := a.Authenticate(r); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cfg.Store.RevokeAPIKey(ctx, k.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked key: %v", err)
	}
	// Disabling the owner stops every key of theirs.
	_, key2, _ := a.CreateAPIKey(ctx, tech, "k2", []string{ScopeSessionsRead}, time.Time{})
	if _, err := a.UpdateAccount(ctx, tech, nil, new(true)); err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+key2)
	if _, err := a.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("key of a disabled account: %v", err)
	}
}

func TestIdleAndAbsoluteTimeout(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	a.CreateUser(ctx, "tech", "s3cret-pass-1", RoleTechnician)
	token, _, _, err := a.Login(ctx, "192.0.2.1", "tech", "s3cret-pass-1", "")
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: token})
	// Used every 20 minutes, the login lives on past the idle timeout,
	// until its absolute lifetime of 12 hours is over.
	start := now
	for {
		now = now.Add(20 * time.Minute)
		_, err := a.Authenticate(r)
		if err == nil {
			continue
		}
		if lived := now.Sub(start); lived < 12*time.Hour || lived > 12*time.Hour+20*time.Minute {
			t.Fatalf("login in use ended after %s: %v", lived, err)
		}
		break
	}
	// Left alone for 31 minutes, a login ends.
	token, _, _, _ = a.Login(ctx, "192.0.2.1", "tech", "s3cret-pass-1", "")
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: token})
	now = now.Add(31 * time.Minute)
	if _, err := a.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("idle login: %v", err)
	}
}

// RFC 6238 appendix B, SHA-1 rows (8 digits).
func TestTOTPVectors(t *testing.T) {
	key := []byte("12345678901234567890")
	for _, v := range []struct {
		unix int64
		want string
	}{
		{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		{1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
	} {
		if got := hotp(key, uint64(v.unix/30), 8); got != v.want {
			t.Errorf("T=%d: %s, want %s", v.unix, got, v.want)
		}
	}
	secret := b32.EncodeToString(key)
	if got, _ := TOTPCode(secret, time.Unix(59, 0)); got != "287082" {
		t.Errorf("6-digit code at T=59: %s, want 287082", got)
	}
}

func TestTOTPLogin(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	u, _ := a.CreateUser(ctx, "tech", "s3cret-pass-1", RoleTechnician)
	if err := a.SetTOTPRequiredRoles(ctx, []string{RoleTechnician}); err != nil {
		t.Fatal(err)
	}
	// Required but not enrolled: the login may only enrol.
	_, login, _, err := a.Login(ctx, "192.0.2.1", "tech", "s3cret-pass-1", "")
	if err != nil || !login.MustEnrol {
		t.Fatalf("login without TOTP where required: %+v %v", login, err)
	}
	secret, uri, err := a.BeginTOTP(ctx, u, "192.0.2.1", "s3cret-pass-1")
	if err != nil || !strings.HasPrefix(uri, "otpauth://totp/Tether:tech?") || !strings.Contains(uri, "secret="+secret) {
		t.Fatalf("enrol: %q %v", uri, err)
	}
	if _, err := a.ConfirmTOTP(ctx, &Principal{User: u}, "000000"); !errors.Is(err, ErrBadTOTP) {
		t.Fatalf("wrong confirmation code: %v", err)
	}
	code, _ := TOTPCode(secret, now)
	if _, err := a.ConfirmTOTP(ctx, &Principal{User: u}, code); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.Login(ctx, "192.0.2.1", "tech", "s3cret-pass-1", ""); !errors.Is(err, ErrTOTPRequired) {
		t.Fatalf("no code: %v", err)
	}
	// The code used to confirm cannot be replayed.
	if _, _, _, err := a.Login(ctx, "192.0.2.1", "tech", "s3cret-pass-1", code); !errors.Is(err, ErrBadTOTP) {
		t.Fatalf("replayed code: %v", err)
	}
	now = now.Add(30 * time.Second)
	code, _ = TOTPCode(secret, now)
	_, login, _, err = a.Login(ctx, "192.0.2.1", "tech", "s3cret-pass-1", code)
	if err != nil || login.MustEnrol {
		t.Fatalf("right code: %+v %v", login, err)
	}
	// Two steps of drift is too much.
	now = now.Add(30 * time.Second)
	old, _ := TOTPCode(secret, now.Add(-90*time.Second))
	if _, _, _, err := a.Login(ctx, "192.0.2.1", "tech", "s3cret-pass-1", old); !errors.Is(err, ErrBadTOTP) {
		t.Fatalf("stale code: %v", err)
	}
	// The role requires it: it cannot be turned off.
	code, _ = TOTPCode(secret, now)
	if err := a.DisableTOTP(ctx, u, "192.0.2.1", "s3cret-pass-1", code); !errors.Is(err, ErrTOTPNeeded) {
		t.Fatalf("turn off required TOTP: %v", err)
	}
}

// BenchmarkCheckPassword is the cost of one login's password check, the
// price an attacker pays per guess.
func BenchmarkCheckPassword(b *testing.B) {
	h, _ := HashPassword("correct horse battery")
	for b.Loop() {
		CheckPassword(h, "correct horse battery")
	}
}

// TestLockoutTableFull: when the lockout table is full (a spray of
// usernames and addresses), the entries whose last failure is oldest make
// room; a lockout in force is not wiped with the rest.
func TestLockoutTableFull(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	for i := range 9999 {
		a.recordFailure(fmt.Sprintf("198.51.100.%d user%d", i%250, i), now)
	}
	now = now.Add(time.Minute)
	for range 5 {
		a.recordFailure("203.0.113.9 admin", now)
	}
	for i := range 100 {
		a.recordFailure(fmt.Sprintf("192.0.2.%d spray%d", i, i), now)
	}
	if err := a.lockedOut("203.0.113.9 admin", now); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("a lockout in force was forgotten when the table filled up: %v", err)
	}
	if n := len(a.failures); n > 10000 {
		t.Fatalf("the table holds %d entries", n)
	}
}

// TestFullDiskKeepsKeysAndLogins fills the disk the database is on: API
// keys and console logins still work, as only the record of their last
// use is lost, and that loss is logged once, not on every request.
func TestFullDiskKeepsKeysAndLogins(t *testing.T) {
	ctx := context.Background()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	s, err := store.OpenSQLite(ctx, filepath.Join(mnt, "tether.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var log strings.Builder
	a, err := New(Config{Store: s, Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.CreateUser(ctx, "integrator", "s3cret-pass-1", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := a.CreateAPIKey(ctx, u, "ticket system", []string{ScopeSessionsCreate}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	token, _, _, err := a.Login(ctx, "192.0.2.1", "integrator", "s3cret-pass-1", "")
	if err != nil {
		t.Fatal(err)
	}

	f, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 4096); err == nil; {
		_, err = f.Write(buf)
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the disk: %v", err)
	}

	withKey := httptest.NewRequest("POST", "/api/v1/sessions", nil)
	withKey.Header.Set("Authorization", "Bearer "+key)
	withCookie := httptest.NewRequest("GET", "/api/v1/sessions", nil)
	withCookie.AddCookie(&http.Cookie{Name: CookieName, Value: token})
	for range 3 {
		now = now.Add(16 * time.Second) // the login's last use is due to be recorded each time
		if p, err := a.Authenticate(withKey); err != nil || p.KeyID == "" {
			t.Fatalf("a valid API key with the disk full: %v", err)
		}
		if p, err := a.Authenticate(withCookie); err != nil || !p.Cookie {
			t.Fatalf("a valid login with the disk full: %v", err)
		}
	}
	if n := strings.Count(log.String(), "cannot record when logins and API keys were last used"); n != 1 {
		t.Errorf("the lost bookkeeping was logged %d times, want once:\n%s", n, log.String())
	}
	now = now.Add(storeTroubleEvery)
	if _, err := a.Authenticate(withCookie); err != nil {
		t.Fatalf("a valid login with the disk full: %v", err)
	}
	if n := strings.Count(log.String(), "cannot record when logins and API keys were last used"); n != 2 {
		t.Errorf("the lost bookkeeping was logged %d times, want again after a while:\n%s", n, log.String())
	}
	if !strings.Contains(log.String(), "record login use: database or disk is full") {
		t.Errorf("the log does not say the disk is full:\n%s", log.String())
	}
	// A wrong key is still refused.
	withKey.Header.Set("Authorization", "Bearer "+key+"x")
	if _, err := a.Authenticate(withKey); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("wrong key with the disk full: %v", err)
	}
}

// TestDatabaseFailureIsNotUnauthenticated: when the database cannot be
// read, a request is not told that its key or login is wrong, and the
// failure is logged.
func TestDatabaseFailureIsNotUnauthenticated(t *testing.T) {
	ctx := context.Background()
	s, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	a, err := New(Config{Store: s, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := a.CreateUser(ctx, "integrator", "s3cret-pass-1", RoleAdmin)
	_, key, err := a.CreateAPIKey(ctx, u, "ticket system", []string{ScopeSessionsCreate}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	token, _, _, err := a.Login(ctx, "192.0.2.1", "integrator", "s3cret-pass-1", "")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	withKey := httptest.NewRequest("POST", "/", nil)
	withKey.Header.Set("Authorization", "Bearer "+key)
	withCookie := httptest.NewRequest("GET", "/", nil)
	withCookie.AddCookie(&http.Cookie{Name: CookieName, Value: token})
	for _, r := range []*http.Request{withKey, withCookie} {
		_, err := a.Authenticate(r)
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnauthenticated) {
			t.Errorf("database closed: %v, want ErrUnavailable", err)
		}
	}
	if !strings.Contains(log.String(), "level=ERROR msg=\"cannot check logins and API keys") {
		t.Errorf("the failure was not logged:\n%s", log.String())
	}
}

// TestAdminsDemotingEachOtherKeepAnAdmin: the only two admins each demote
// the other at the same moment. One may succeed, never both: the broker
// always keeps an active admin to manage it.
func TestAdminsDemotingEachOtherKeepAnAdmin(t *testing.T) {
	ctx := context.Background()
	a := newAuth(t, nil)
	ann, _ := a.CreateUser(ctx, "ann", "ann-password-1", RoleAdmin)
	bob, _ := a.CreateUser(ctx, "bob", "bob-password-1", RoleAdmin)
	for round := range 50 {
		// Each request reads the account it changes, as the API does.
		annNow, _ := a.cfg.Store.UserByID(ctx, ann.ID)
		bobNow, _ := a.cfg.Store.UserByID(ctx, bob.ID)
		start := make(chan struct{})
		errs := make(chan error, 2)
		go func() { <-start; _, err := a.UpdateAccount(ctx, annNow, new(RoleTechnician), nil); errs <- err }()
		go func() { <-start; _, err := a.UpdateAccount(ctx, bobNow, new(RoleTechnician), nil); errs <- err }()
		close(start)
		refused := 0
		for range 2 {
			if err := <-errs; errors.Is(err, ErrLastAdmin) {
				refused++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		admins := 0
		for _, id := range []int64{ann.ID, bob.ID} {
			u, _ := a.cfg.Store.UserByID(ctx, id)
			if u.Role == RoleAdmin && !u.Disabled {
				admins++
			}
		}
		if admins == 0 {
			t.Fatalf("round %d: both admins demoted each other at once and no admin is left (%d refused)", round, refused)
		}
		// Make the demoted one an admin again for the next round.
		for _, u := range []*store.User{ann, bob} {
			u, _ = a.cfg.Store.UserByID(ctx, u.ID)
			if _, err := a.UpdateAccount(ctx, u, new(RoleAdmin), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestCodePauseOutlastsAFlood: someone who knows tina's password guesses
// codes until her codes are paused, then fills the lockout table with
// failures for made-up accounts from many addresses to push the pause out.
// The pause holds: the right code is still refused until it is over.
func TestCodePauseOutlastsAFlood(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	u, _ := a.CreateUser(ctx, "tina", "tina-password-1", RoleTechnician)
	secret, _, err := a.BeginTOTP(ctx, u, "203.0.113.1", "tina-password-1")
	if err != nil {
		t.Fatal(err)
	}
	code, _ := TOTPCode(secret, now)
	if _, err := a.ConfirmTOTP(ctx, &Principal{User: u}, code); err != nil {
		t.Fatal(err)
	}
	// Two wrong codes from each address, below the per-address lockout.
	for i := range maxCodeFailures {
		from := fmt.Sprintf("203.0.113.%d", i/2)
		if _, _, _, err := a.Login(ctx, from, "tina", "tina-password-1", fmt.Sprintf("%06d", 100000+i)); !errors.Is(err, ErrBadTOTP) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	code, _ = TOTPCode(secret, now.Add(30*time.Second)) // the next one: the enrolment's is used
	if _, _, _, err := a.Login(ctx, "203.0.113.99", "tina", "tina-password-1", code); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("after %d wrong codes, the right one: %v, want a pause", maxCodeFailures, err)
	}
	// The flood: as many failed sign-ins to made-up accounts as the
	// table holds, and more, from many addresses.
	now = now.Add(time.Second)
	for i := range maxFailureEntries + 100 {
		a.recordFailure(failureKey(fmt.Sprintf("nobody%d", i), fmt.Sprintf("2001:db8:%x::", i)), now)
	}
	if _, _, _, err := a.Login(ctx, "203.0.113.99", "tina", "tina-password-1", code); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("after a flood of failures for other accounts, tina's codes are no longer paused: %v", err)
	}
	if n := len(a.failures); n > maxFailureEntries+10 {
		t.Errorf("the lockout table holds %d entries", n)
	}
}

// TestStolenLoginCannotChangeTwoFactor: someone holding tina's login but
// not her password can neither put their own authenticator on her account,
// locking her out, nor turn hers off. Their guesses at the password count
// as failed sign-ins and soon lock them out; tina, with her password, may
// go on.
func TestStolenLoginCannotChangeTwoFactor(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	u, _ := a.CreateUser(ctx, "tina", "tina-password-1", RoleTechnician)
	const thief, owner = "198.51.100.7", "192.0.2.1"
	for i := range maxFailures {
		if _, _, err := a.BeginTOTP(ctx, u, thief, fmt.Sprintf("guess-%d", i)); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("enrolment with a wrong password: %v, want ErrBadCredentials", err)
		}
	}
	if _, _, err := a.BeginTOTP(ctx, u, thief, "tina-password-1"); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("after %d wrong passwords, enrolment from the same address: %v, want a lockout", maxFailures, err)
	}
	if _, _, _, err := a.Login(ctx, thief, "tina", "tina-password-1", ""); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("the wrong passwords do not count as failed sign-ins: %v", err)
	}
	if got, _ := a.cfg.Store.UserByID(ctx, u.ID); got.TOTPSecret != "" || got.TOTPEnabled {
		t.Fatal("a refused enrolment stored a two-factor secret")
	}

	// Tina sets it up with her password; the thief cannot turn it off.
	secret, _, err := a.BeginTOTP(ctx, u, owner, "tina-password-1")
	if err != nil {
		t.Fatal(err)
	}
	code, _ := TOTPCode(secret, now)
	if _, err := a.ConfirmTOTP(ctx, &Principal{User: u}, code); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Second)
	code, _ = TOTPCode(secret, now)
	if err := a.DisableTOTP(ctx, u, "198.51.100.8", "guess", code); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("turning two-factor off with a wrong password: %v, want ErrBadCredentials", err)
	}
	if err := a.DisableTOTP(ctx, u, owner, "tina-password-1", code); err != nil {
		t.Fatalf("tina turns it off with her password and a code: %v", err)
	}
}

// TestLongUsernameForgotten: sign-ins with usernames longer than any
// account's get the answer of a wrong password, and the lockout table
// keeps none of them: it is bounded by entries, and 60 KB names in each
// would fill the memory. A name of the longest length an account may have
// is counted as before.
func TestLongUsernameForgotten(t *testing.T) {
	ctx := context.Background()
	a := newAuth(t, nil)
	long := strings.Repeat("a", 60<<10)
	for i := range 10 {
		if _, _, _, err := a.Login(ctx, "192.0.2.1", fmt.Sprint(i, long), "some password", ""); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("a 60 KB username: %v, want ErrBadCredentials", err)
		}
	}
	if n := len(a.failures); n != 0 {
		t.Errorf("the lockout table keeps %d entries for 60 KB usernames", n)
	}
	if _, _, _, err := a.Login(ctx, "192.0.2.1", strings.Repeat("b", MaxUsernameLength), "some password", ""); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("a username of the longest length: %v, want ErrBadCredentials", err)
	}
	if n := len(a.failures); n != 1 {
		t.Errorf("a wrong password for the longest username makes %d entries, want 1", n)
	}
}

// TestCredentialChangesKeepAdminChanges: while tina changes her password
// or two-factor setup, or an admin resets her account, another admin
// disables and demotes it. Each change goes on with the account as its
// request loaded it, before; the account stays disabled and demoted.
func TestCredentialChangesKeepAdminChanges(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	const password, from = "tina-password-1", "192.0.2.1"
	enrol := func(u *store.User) {
		secret, _, err := a.BeginTOTP(ctx, u, from, password)
		if err != nil {
			t.Fatal(err)
		}
		code, _ := TOTPCode(secret, now)
		if _, err := a.ConfirmTOTP(ctx, &Principal{User: u}, code); err != nil {
			t.Fatal(err)
		}
		now = now.Add(30 * time.Second) // the next code is new
	}
	for i, c := range []struct {
		name    string
		prepare func(*store.User) // before the request loads the account
		change  func(*store.User) error
	}{
		{"password change", nil, func(u *store.User) error {
			return a.ChangePassword(ctx, &Principal{User: u}, from, password, "tina-password-2")
		}},
		{"two-factor enrolment", nil, func(u *store.User) error {
			_, _, err := a.BeginTOTP(ctx, u, from, password)
			return err
		}},
		{"two-factor confirmation", func(u *store.User) {
			if _, _, err := a.BeginTOTP(ctx, u, from, password); err != nil {
				t.Fatal(err)
			}
		}, func(u *store.User) error {
			code, _ := TOTPCode(u.TOTPSecret, now)
			_, err := a.ConfirmTOTP(ctx, &Principal{User: u}, code)
			return err
		}},
		{"two-factor turned off", enrol, func(u *store.User) error {
			code, _ := TOTPCode(u.TOTPSecret, now)
			return a.DisableTOTP(ctx, u, from, password, code)
		}},
		{"reset", nil, func(u *store.User) error {
			_, err := a.ResetUser(ctx, u)
			return err
		}},
	} {
		u, err := a.CreateUser(ctx, fmt.Sprint("tina", i), password, RoleTechnician)
		if err != nil {
			t.Fatal(err)
		}
		if c.prepare != nil {
			c.prepare(u)
		}
		loaded, _ := a.cfg.Store.UserByID(ctx, u.ID)
		byAdmin, _ := a.cfg.Store.UserByID(ctx, u.ID)
		if _, err := a.UpdateAccount(ctx, byAdmin, new(RoleSupervisor), new(true)); err != nil {
			t.Fatal(err)
		}
		if err := c.change(loaded); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, _ := a.cfg.Store.UserByID(ctx, u.ID); !got.Disabled || got.Role != RoleSupervisor {
			t.Errorf("%s undid the admin's change: disabled %v, role %s", c.name, got.Disabled, got.Role)
		}
	}
}

// TestLoginRacingCredentialChange: a sign-in with tina's old password is
// checking it when her password is changed, her account reset or
// disabled, or she turns two-factor authentication on, each of which ends
// her logins. The sign-in must not open a login that outlives the change
// (for a disabled account: that comes back when it is enabled again).
func TestLoginRacingCredentialChange(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	const password = "tina-password-1"
	newHash, err := HashPassword("tina-password-2")
	if err != nil {
		t.Fatal(err)
	}
	st := a.cfg.Store
	slotsWere := argonSlots
	t.Cleanup(func() { argonSlots = slotsWere })
	for i, c := range []struct {
		name   string
		change func(u *store.User) error // as the broker makes it, without hashing
	}{
		{"password change", func(u *store.User) error {
			if err := st.SetPassword(ctx, u.ID, u.PasswordHash, newHash); err != nil {
				return err
			}
			return st.DeleteOtherLogins(ctx, u.ID, "")
		}},
		{"reset", func(u *store.User) error {
			if err := st.ResetCredentials(ctx, u.ID, newHash); err != nil {
				return err
			}
			return st.DeleteUserLogins(ctx, u.ID)
		}},
		{"disabling", func(u *store.User) error {
			_, err := a.UpdateAccount(ctx, u, nil, new(true))
			return err
		}},
		{"two-factor enrolment", func(u *store.User) error {
			if err := st.SetTOTP(ctx, u.ID, NewTOTPSecret(), true, 0); err != nil {
				return err
			}
			return st.DeleteOtherLogins(ctx, u.ID, "")
		}},
	} {
		name := fmt.Sprint("tina", i)
		u, err := a.CreateUser(ctx, name, password, RoleTechnician)
		if err != nil {
			t.Fatal(err)
		}
		// With no slot free, the sign-in waits for one to check the
		// password, with the account it read in hand.
		slots := make(chan struct{})
		argonSlots = slots
		type result struct {
			token string
			err   error
		}
		done := make(chan result, 1)
		go func() {
			token, _, _, err := a.Login(ctx, "192.0.2.1", name, password, "")
			done <- result{token, err}
		}()
		<-slots // the sign-in is checking the password
		if err := c.change(u); err != nil {
			t.Fatal(err)
		}
		slots <- struct{}{} // its check is over
		res := <-done
		argonSlots = slotsWere
		if !errors.Is(res.err, ErrBadCredentials) {
			t.Errorf("%s during the sign-in: %v, want ErrBadCredentials", c.name, res.err)
		}
		if c.name == "disabling" {
			if _, err := a.UpdateAccount(ctx, u, nil, new(false)); err != nil {
				t.Fatal(err)
			}
		}
		if res.token != "" {
			r := httptest.NewRequest("GET", "/api/v1/me", nil)
			r.Header.Set("Authorization", "Bearer "+res.token)
			if _, err := a.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("%s during the sign-in: its login works after the change: %v", c.name, err)
			}
		}
	}
}

// TestEnrolmentCodeCannotBeGuessed: tina began setting up two-factor
// authentication and left it. Someone holding her login, not her
// password, guesses codes to turn it on: after maxCodeFailures wrong ones,
// from any address, even the right code waits; after the wait it works,
// and the count starts afresh.
func TestEnrolmentCodeCannotBeGuessed(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	u, err := a.CreateUser(ctx, "tina", "tina-password-1", RoleTechnician)
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := a.BeginTOTP(ctx, u, "192.0.2.1", "tina-password-1")
	if err != nil {
		t.Fatal(err)
	}
	right, _ := TOTPCode(secret, now)
	wrong := func(i int) string {
		c := fmt.Sprintf("%06d", i)
		for d := -totpSkew; d <= totpSkew; d++ {
			if code, _ := TOTPCode(secret, now.Add(time.Duration(d)*totpPeriod*time.Second)); code == c {
				return "999999"
			}
		}
		return c
	}
	for i := range maxCodeFailures {
		if _, err := a.ConfirmTOTP(ctx, &Principal{User: u}, wrong(i)); !errors.Is(err, ErrBadTOTP) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	if _, err := a.ConfirmTOTP(ctx, &Principal{User: u}, right); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("after %d wrong codes, the right one: %v, want a pause", maxCodeFailures, err)
	}
	if got, _ := a.cfg.Store.UserByID(ctx, u.ID); got.TOTPEnabled {
		t.Fatal("two-factor authentication was turned on during the pause")
	}
	now = now.Add(lockoutFor)
	right, _ = TOTPCode(secret, now)
	if _, err := a.ConfirmTOTP(ctx, &Principal{User: u}, right); err != nil {
		t.Fatalf("the right code after the pause: %v", err)
	}
	a.mu.Lock()
	left := a.failures[codeFailureKey("tina")]
	a.mu.Unlock()
	if left != nil {
		t.Errorf("a right code left the wrong ones counted: %+v", left)
	}
}

// TestEndedLoginsAreDeleted: logins past their absolute lifetime or left
// idle are deleted from the database when someone signs in, not kept for
// ever; a login in use stays.
func TestEndedLoginsAreDeleted(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	if _, err := a.CreateUser(ctx, "tina", "tina-password-1", RoleTechnician); err != nil {
		t.Fatal(err)
	}
	login := func() *store.Login {
		t.Helper()
		_, l, _, err := a.Login(ctx, "192.0.2.1", "tina", "tina-password-1", "")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	// stored looks the login up as at its creation, when it was valid.
	stored := func(l *store.Login) bool {
		_, err := a.cfg.Store.LoginByToken(ctx, l.TokenHash, l.CreatedAt, l.CreatedAt.Add(-time.Second))
		return err == nil
	}
	// use has l used every 20 minutes for hours.
	use := func(l *store.Login, hours int) {
		for range 3 * hours {
			now = now.Add(20 * time.Minute)
			if err := a.cfg.Store.TouchLogin(ctx, l, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	idle := login()
	used := login()
	use(used, 10)
	login()
	if stored(idle) {
		t.Error("a login idle for 10 hours is still in the database")
	}
	if !stored(used) {
		t.Error("a login in use was deleted")
	}
	use(used, 2) // to the end of its 12 hours, in use to the last
	login()
	if stored(used) {
		t.Error("a login past its 12 hours is still in the database")
	}
}

// TestPasswordChangeRacingReset: someone holding tina's login and her old
// password is changing it to one of their own when an admin resets her
// account. The change, checked against the old password, must not
// overwrite the password the reset gave her.
func TestPasswordChangeRacingReset(t *testing.T) {
	ctx := context.Background()
	a := newAuth(t, nil)
	u, err := a.CreateUser(ctx, "tina", "tina-password-1", RoleTechnician)
	if err != nil {
		t.Fatal(err)
	}
	resetHash, err := HashPassword("given-by-the-admin")
	if err != nil {
		t.Fatal(err)
	}
	slotsWere := argonSlots
	t.Cleanup(func() { argonSlots = slotsWere })
	slots := make(chan struct{})
	argonSlots = slots
	done := make(chan error, 1)
	go func() {
		done <- a.ChangePassword(ctx, &Principal{User: u}, "192.0.2.1", "tina-password-1", "the-thiefs-own-1")
	}()
	<-slots // the change is checking the current password
	// The reset, as ResetUser makes it, without hashing.
	if err := a.cfg.Store.ResetCredentials(ctx, u.ID, resetHash); err != nil {
		t.Fatal(err)
	}
	if err := a.cfg.Store.DeleteUserLogins(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	// From here on the change may hash as it needs.
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case slots <- struct{}{}:
			case <-slots:
			case <-quit:
				return
			}
		}
	}()
	err = <-done
	close(quit)
	if !errors.Is(err, ErrBadCredentials) {
		t.Errorf("a password change over a reset: %v, want ErrBadCredentials", err)
	}
	got, err := a.cfg.Store.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PasswordHash != resetHash {
		t.Error("the password change undid the admin's reset")
	}
}

// TestEnrolmentEndsOtherLogins: someone who learnt tina's password signs
// in. When tina then enrols from her own login, theirs, which gave no
// code, ends, and hers goes on: where technicians must use two-factor
// already (theirs could only enrol, and must not become a full login),
// and where they come to later (theirs must not pass for a login that gave
// a code).
func TestEnrolmentEndsOtherLogins(t *testing.T) {
	for _, requiredFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("required first %v", requiredFirst), func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
			a := newAuth(t, func() time.Time { return now })
			if _, err := a.CreateUser(ctx, "tina", "tina-password-1", RoleTechnician); err != nil {
				t.Fatal(err)
			}
			require := func() {
				if err := a.SetTOTPRequiredRoles(ctx, []string{RoleTechnician}); err != nil {
					t.Fatal(err)
				}
			}
			if requiredFirst {
				require()
			}
			authenticate := func(token string) (*Principal, error) {
				r := httptest.NewRequest("GET", "/api/v1/me", nil)
				r.Header.Set("Authorization", "Bearer "+token)
				return a.Authenticate(r)
			}
			tinas, _, _, err := a.Login(ctx, "192.0.2.1", "tina", "tina-password-1", "")
			if err != nil {
				t.Fatal(err)
			}
			theirs, _, _, err := a.Login(ctx, "198.51.100.7", "tina", "tina-password-1", "")
			if err != nil {
				t.Fatal(err)
			}
			p, err := authenticate(tinas)
			if err != nil || p.MustEnrol != requiredFirst {
				t.Fatalf("tina's login before enrolling: %+v %v", p, err)
			}
			secret, _, err := a.BeginTOTP(ctx, p.User, "192.0.2.1", "tina-password-1")
			if err != nil {
				t.Fatal(err)
			}
			code, _ := TOTPCode(secret, now)
			if _, err := a.ConfirmTOTP(ctx, p, code); err != nil {
				t.Fatal(err)
			}
			if !requiredFirst {
				require()
			}
			if p, err := authenticate(theirs); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("a login opened with the password alone, after tina enrolled: %+v %v, want it ended", p, err)
			}
			if p, err := authenticate(tinas); err != nil || p.MustEnrol {
				t.Errorf("tina's own login after enrolling: %+v %v, want a full login", p, err)
			}
		})
	}
}

// TestRecoveryCodes: turning two-factor on gives ten recovery codes, each
// of which signs in once in place of the phone's code, however it is
// typed. A new set, given the password and a code, ends the old one;
// turning two-factor off and an admin's reset end them all. A recovery
// code of another account, or a made-up one, counts as a wrong code.
func TestRecoveryCodes(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	const password, from = "tina-password-1", "192.0.2.1"
	enrol := func(name string) (*store.User, string, []string) {
		u, err := a.CreateUser(ctx, name, password, RoleTechnician)
		if err != nil {
			t.Fatal(err)
		}
		secret, _, err := a.BeginTOTP(ctx, u, from, password)
		if err != nil {
			t.Fatal(err)
		}
		code, _ := TOTPCode(secret, now)
		codes, err := a.ConfirmTOTP(ctx, &Principal{User: u}, code)
		if err != nil {
			t.Fatal(err)
		}
		return u, secret, codes
	}
	u, secret, codes := enrol("tina")
	_, _, others := enrol("olga")
	format := regexp.MustCompile(`^[a-hj-km-np-z2-9]{5}-[a-hj-km-np-z2-9]{5}$`)
	seen := map[string]bool{}
	for _, c := range append(slices.Clone(codes), others...) {
		if !format.MatchString(c) || seen[c] {
			t.Fatalf("recovery codes %q and %q: want distinct codes of the form xxxxx-xxxxx", codes, others)
		}
		seen[c] = true
	}
	if len(codes) != RecoveryCodeCount {
		t.Fatalf("%d recovery codes, want %d", len(codes), RecoveryCodeCount)
	}
	left := func(want int) {
		t.Helper()
		if n, err := a.RecoveryCodesLeft(ctx, u); err != nil || n != want {
			t.Fatalf("recovery codes left: %d %v, want %d", n, err, want)
		}
	}
	left(10)

	// Each works once, in upper case or with spaces for the dash too.
	if _, _, _, err := a.Login(ctx, from, "tina", password, codes[0]); err != nil {
		t.Fatalf("sign-in with a recovery code: %v", err)
	}
	if _, _, _, err := a.Login(ctx, from, "tina", password, codes[0]); !errors.Is(err, ErrBadTOTP) {
		t.Fatalf("the same recovery code again: %v, want ErrBadTOTP", err)
	}
	if _, _, _, err := a.Login(ctx, from, "tina", password, strings.ToUpper(strings.Replace(codes[1], "-", " ", 1))); err != nil {
		t.Fatalf("a recovery code in capitals with a space: %v", err)
	}
	left(8)
	// Another account's code, or a made-up one, is a wrong code, and
	// enough of them pause the account's codes as wrong phone codes do.
	if _, _, _, err := a.Login(ctx, from, "tina", password, others[0]); !errors.Is(err, ErrBadTOTP) {
		t.Fatalf("olga's recovery code for tina: %v, want ErrBadTOTP", err)
	}
	for i := range maxCodeFailures {
		if _, _, _, err := a.Login(ctx, fmt.Sprintf("203.0.113.%d", i/2), "tina", password, fmt.Sprintf("aaaaa-%05d", 22222+i)); !errors.Is(err, ErrBadTOTP) && !errors.Is(err, ErrLockedOut) {
			t.Fatalf("made-up recovery code %d: %v", i, err)
		}
	}
	if _, _, _, err := a.Login(ctx, "203.0.113.99", "tina", password, codes[2]); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("after %d wrong recovery codes, a right one: %v, want a pause", maxCodeFailures, err)
	}
	now = now.Add(time.Hour)
	if n, _ := a.RecoveryCodesLeft(ctx, olga(t, a)); n != 10 {
		t.Fatalf("olga has %d recovery codes left after her code was tried on tina's account, want 10", n)
	}

	// A new set needs the password and a code; the old set stops working.
	if _, err := a.NewRecoveryCodes(ctx, u, from, "wrong-password", codes[2]); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("new codes with a wrong password: %v", err)
	}
	if _, err := a.NewRecoveryCodes(ctx, u, from, password, "000000"); !errors.Is(err, ErrBadTOTP) {
		t.Fatalf("new codes with a wrong code: %v", err)
	}
	now = now.Add(time.Hour) // past the address's lockout
	code, _ := TOTPCode(secret, now)
	fresh, err := a.NewRecoveryCodes(ctx, u, from, password, code)
	if err != nil || len(fresh) != RecoveryCodeCount {
		t.Fatalf("new codes: %q %v", fresh, err)
	}
	left(10)
	if _, _, _, err := a.Login(ctx, from, "tina", password, codes[3]); !errors.Is(err, ErrBadTOTP) {
		t.Fatalf("a code of the old set after a new one: %v, want ErrBadTOTP", err)
	}

	// A recovery code turns two-factor off, and the codes go with it.
	if err := a.DisableTOTP(ctx, u, "192.0.2.2", password, fresh[0]); err != nil {
		t.Fatalf("turn off with a recovery code: %v", err)
	}
	left(0)
	if _, err := a.NewRecoveryCodes(ctx, u, "192.0.2.2", password, fresh[1]); !errors.Is(err, ErrTOTPOff) {
		t.Fatalf("new codes with two-factor off: %v, want ErrTOTPOff", err)
	}

	// An admin's reset ends them too.
	o := olga(t, a)
	if _, err := a.ResetUser(ctx, o); err != nil {
		t.Fatal(err)
	}
	if n, _ := a.RecoveryCodesLeft(ctx, o); n != 0 {
		t.Fatalf("after a reset, olga has %d recovery codes left", n)
	}
}

func olga(t *testing.T, a *Authenticator) *store.User {
	t.Helper()
	u, err := a.cfg.Store.UserByName(context.Background(), "olga")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestNoSecretNoCode: an account with two-factor on whose secret reads as
// none (sealed with a key the broker no longer has) takes no code at all,
// not the codes of an empty key, which anyone can compute.
func TestNoSecretNoCode(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := newAuth(t, func() time.Time { return now })
	u, _ := a.CreateUser(ctx, "tina", "tina-password-1", RoleTechnician)
	if err := a.cfg.Store.SetTOTP(ctx, u.ID, "", true, 0); err != nil {
		t.Fatal(err)
	}
	code, err := TOTPCode("", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.Login(ctx, "192.0.2.1", "tina", "tina-password-1", code); !errors.Is(err, ErrBadTOTP) {
		t.Fatalf("the code of an empty secret: %v, want ErrBadTOTP", err)
	}
}
