package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMigrationKeepsKeysWorking: a database from before scoped keys keeps
// its keys working with every scope, and its logins alive.
func TestMigrationKeepsKeysWorking(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations[:4] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	now := time.Now()
	stmts := []string{
		"PRAGMA user_version = 4",
		fmt.Sprintf("INSERT INTO users (username, password_hash, role, created_at) VALUES ('admin', 'x', 'admin', %d)", now.UnixMilli()),
		fmt.Sprintf("INSERT INTO api_keys (id, user_id, name, hash, created_at) VALUES ('key_1', 1, 'old', 'h1', %d)", now.UnixMilli()),
		fmt.Sprintf("INSERT INTO logins (token_hash, user_id, csrf, created_at, expires_at) VALUES ('t1', 1, 'c', %d, %d)", now.UnixMilli(), now.Add(time.Hour).UnixMilli()),
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, err := s.APIKeyByHash(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range []string{"sessions:create", "sessions:join", "users:admin", "webhooks:admin"} {
		if !slices.Contains(k.Scopes, sc) {
			t.Errorf("migrated key lacks %s: %v", sc, k.Scopes)
		}
	}
	if _, err := s.LoginByToken(ctx, "t1", now, now.Add(-30*time.Minute)); err != nil {
		t.Errorf("login from before the idle timeout: %v", err)
	}
	u, err := s.UserByName(ctx, "admin")
	if err != nil || u.Disabled || u.TOTPEnabled {
		t.Errorf("migrated user: %+v %v", u, err)
	}
}

func TestListSessionsFilter(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var users []*User
	for _, name := range []string{"tina", "tom"} {
		u := technician(t, s, name, t0)
		users = append(users, u)
	}
	for i, c := range []struct {
		owner  int
		ticket string
		state  string
	}{{0, "INC-1", StateWaiting}, {0, "INC-2", StateEnded}, {1, "INC-1", StateWaiting}, {1, "", StateActive}} {
		err := s.CreateSession(ctx, &Session{ID: fmt.Sprint("s", i), CodeHash: fmt.Sprint("h", i), CodeExpiresAt: t0.Add(time.Hour),
			CreatedBy: users[c.owner].ID, TicketID: c.ticket, TicketSystem: "jira", State: c.state, CreatedAt: t0.Add(time.Duration(i) * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
	}
	s.AddParticipant(ctx, "s3", users[0].ID, users[1].ID, t0)
	ids := func(f SessionFilter) []string {
		list, err := s.ListSessions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range list {
			out = append(out, x.ID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    SessionFilter
		want []string
	}{
		{"all, newest first", SessionFilter{}, []string{"s3", "s2", "s1", "s0"}},
		{"ticket", SessionFilter{TicketID: "INC-1"}, []string{"s2", "s0"}},
		{"technician", SessionFilter{Technician: users[1].ID}, []string{"s3", "s2"}},
		{"visible to tina: hers and the one she was invited to", SessionFilter{Visible: users[0].ID}, []string{"s3", "s1", "s0"}},
		{"state", SessionFilter{State: StateWaiting}, []string{"s2", "s0"}},
		{"time window", SessionFilter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, []string{"s2", "s1"}},
		{"limit", SessionFilter{Limit: 1}, []string{"s3"}},
	} {
		if got := ids(c.f); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestListSessionsPages: page after page, each going on after the last
// session of the one before, the list holds every session once, those
// created in the same millisecond too (a time cursor would skip them).
func TestListSessionsPages(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	u := technician(t, s, "tech", now)
	at := []time.Time{now.Add(2 * time.Millisecond), now.Add(time.Millisecond), now, now, now, now.Add(-time.Millisecond)}
	var want []string
	for i, c := range at {
		id := fmt.Sprintf("s%d", i)
		if err := s.CreateSession(ctx, &Session{ID: id, CodeHash: id, CodeExpiresAt: c.Add(time.Minute), CreatedBy: u.ID, State: StateWaiting, CreatedAt: c}); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	var got []string
	f := SessionFilter{Limit: 3}
	for range len(at) {
		list, err := s.ListSessions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 0 {
			break
		}
		for _, x := range list {
			got = append(got, x.ID)
		}
		f.After = list[len(list)-1]
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages of 3 hold %v, want %v", got, want)
	}
}

// TestDeleteCodeAttempts: the attempts from before the cut go, the later
// ones stay.
func TestDeleteCodeAttempts(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cut := now.Add(-30 * 24 * time.Hour)
	for _, at := range []time.Time{cut.Add(-24 * time.Hour), cut.Add(-time.Millisecond), cut, now.Add(-time.Hour)} {
		if err := s.AddCodeAttempt(ctx, &CodeAttempt{At: at, Source: "203.0.113.7", Via: "join_page", Outcome: "unknown"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteCodeAttempts(ctx, cut); err != nil {
		t.Fatal(err)
	}
	list, err := s.CodeAttempts(ctx, now.Add(-365*24*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	var kept []time.Time
	for _, a := range list {
		kept = append(kept, a.At.UTC())
	}
	if want := []time.Time{now.Add(-time.Hour), cut}; !slices.Equal(kept, want) {
		t.Errorf("kept attempts of %v, want %v", kept, want)
	}
}

// TestHandOverKeepsNoAccess: who hands a session over keeps no access to
// it, also when they had been invited into it before it was theirs; they
// have it again when invited back.
func TestHandOverKeepsNoAccess(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var ids []int64
	for _, name := range []string{"tina", "tom"} {
		u := technician(t, s, name, now)
		ids = append(ids, u.ID)
	}
	tina, tom := ids[0], ids[1]
	if err := s.CreateSession(ctx, &Session{ID: "s", CodeHash: "h", CodeExpiresAt: now.Add(time.Hour), CreatedBy: tina, State: StateWaiting, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	access := func(user int64) bool {
		sess, err := s.SessionByID(ctx, "s")
		if err != nil {
			t.Fatal(err)
		}
		in, err := s.IsParticipant(ctx, "s", user)
		if err != nil {
			t.Fatal(err)
		}
		return sess.CreatedBy == user || in
	}
	s.AddParticipant(ctx, "s", tom, tina, now) // invited, then given it
	for _, step := range []struct{ from, to int64 }{{tina, tom}, {tom, tina}} {
		if err := s.HandOver(ctx, "s", step.to, now); err != nil {
			t.Fatal(err)
		}
		if access(step.from) || !access(step.to) {
			t.Errorf("after the handover from %d to %d: access %v and %v", step.from, step.to, access(step.from), access(step.to))
		}
	}
	if err := s.AddParticipant(ctx, "s", tom, tina, now); err != nil || !access(tom) {
		t.Errorf("tom invited back: access %v, %v", access(tom), err)
	}
	if err := s.HandOver(ctx, "nope", tom, now); !errors.Is(err, ErrNotFound) {
		t.Errorf("handing over no session: %v", err)
	}
}

// TestTOTPSecretsSealed: with a key, two-factor secrets are kept sealed,
// those written before the key are sealed when it comes, and the account
// reads its secret back. The database alone gives none away; under
// another key a secret reads as none and is counted, as is one copied
// into another account's row.
func TestTOTPSecretsSealed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tether.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const before, after = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	tina, olga := technician(t, s, "tina", time.Now()), technician(t, s, "olga", time.Now())
	if err := s.SetTOTP(ctx, tina.ID, before, true, 0); err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{7}, SecretKeySize)
	if err := s.SealSecrets(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTOTP(ctx, olga.ID, after, false, 0); err != nil {
		t.Fatal(err)
	}
	stored := func(id int64) string {
		var v string
		if err := s.db.QueryRowContext(ctx, "SELECT totp_secret FROM users WHERE id = ?", id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for id, secret := range map[int64]string{tina.ID: before, olga.ID: after} {
		if v := stored(id); !strings.HasPrefix(v, sealedPrefix) || strings.Contains(v, secret) {
			t.Errorf("account %d's secret is kept as %q", id, v)
		}
		if u, err := s.UserByID(ctx, id); err != nil || u.TOTPSecret != secret {
			t.Errorf("account %d reads its secret as %q (%v), want %q", id, u.TOTPSecret, err, secret)
		}
	}
	s.Close()
	if data, err := os.ReadFile(path); err != nil || bytes.Contains(data, []byte(before)) || bytes.Contains(data, []byte(after)) {
		t.Errorf("the database file holds a secret in the clear (%v)", err)
	}

	// Another key: the secrets read as none, and are counted.
	s, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SealSecrets(ctx, bytes.Repeat([]byte{8}, SecretKeySize)); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.UserByID(ctx, tina.ID); u.TOTPSecret != "" {
		t.Errorf("under another key tina's secret reads as %q", u.TOTPSecret)
	}
	if n, err := s.UnreadableSecrets(ctx); err != nil || n != 2 {
		t.Errorf("unreadable secrets under another key: %d %v, want 2", n, err)
	}
	// The right key, but tina's sealed secret copied into olga's row.
	if err := s.SealSecrets(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE users SET totp_secret = ? WHERE id = ?", stored(tina.ID), olga.ID); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.UserByID(ctx, olga.ID); u.TOTPSecret != "" {
		t.Errorf("tina's sealed secret opened in olga's row as %q", u.TOTPSecret)
	}
	if n, _ := s.UnreadableSecrets(ctx); n != 1 {
		t.Errorf("unreadable secrets after the copy: %d, want 1", n)
	}
}
