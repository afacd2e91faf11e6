package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/store"
)

// TestFirstAdminWrittenOrNotKept: on first start the broker cannot write
// the first admin's credentials (here a directory is in the way). It does
// not start, and keeps no admin nobody can sign in as: once the way is
// clear, the next start makes the first admin and writes its credentials,
// which work.
func TestFirstAdminWrittenOrNotKept(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, InitialAdminFile)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if b, err := New(ctx, testConfig(t, dir)); err == nil {
		b.close()
		t.Fatal("the broker started without writing the first admin's credentials")
	} else if !strings.Contains(err.Error(), InitialAdminFile) {
		t.Errorf("error %q does not name %s", err, InitialAdminFile)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if !b.CreatedAdmin() {
		t.Fatal("the next start made no first admin: the one whose credentials were never written was kept")
	}
	admin := readAdmin(t, b)
	if _, _, _, err := b.auth.Login(ctx, "127.0.0.1", admin.User, admin.Password, ""); err != nil {
		t.Errorf("the first admin's password: %v", err)
	}
	if _, err := b.store.APIKeyByHash(ctx, auth.HashToken(admin.APIKey)); err != nil {
		t.Errorf("the first admin's API key: %v", err)
	}
}

// TestResetAccountFromTheCommandLine: the only admin forgot the password
// (or lost the authenticator, two-factor being required for admins). With
// the broker stopped, reset-account gives the account a new password that
// signs in, turns two-factor off and ends the old logins; while the broker
// runs it refuses, and an unknown name is said to be one.
func TestResetAccountFromTheCommandLine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := New(ctx, testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := b.auth.BeginTOTP(ctx, mustUser(t, b, "admin"), "127.0.0.1", readAdmin(t, b).Password)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := auth.TOTPCode(secret, time.Now())
	if _, err := b.auth.ConfirmTOTP(ctx, &auth.Principal{User: mustUser(t, b, "admin")}, code); err != nil {
		t.Fatal(err)
	}
	if _, err := ResetAccount(ctx, dir, "admin"); err == nil || !strings.Contains(err.Error(), "stop the broker first") {
		t.Errorf("reset while the broker runs: %v, want it refused", err)
	}
	if err := b.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ResetAccount(ctx, dir, "nobody"); !errors.Is(err, ErrNoAccount) {
		t.Errorf("reset of an unknown account: %v, want ErrNoAccount", err)
	}
	password, err := ResetAccount(ctx, dir, "admin")
	if err != nil {
		t.Fatal(err)
	}
	b, err = New(ctx, testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if _, _, _, err := b.auth.Login(ctx, "127.0.0.1", "admin", readAdmin(t, b).Password, ""); err == nil {
		t.Error("the old password still signs in")
	}
	if _, _, _, err := b.auth.Login(ctx, "127.0.0.1", "admin", password, ""); err != nil {
		t.Errorf("the new password, without a two-factor code: %v", err)
	}
}

func mustUser(t *testing.T, b *Broker, name string) *store.User {
	t.Helper()
	u, err := b.store.UserByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func readAdmin(t *testing.T, b *Broker) InitialAdmin {
	t.Helper()
	var admin InitialAdmin
	data, err := os.ReadFile(b.InitialAdminPath())
	if err != nil || json.Unmarshal(data, &admin) != nil {
		t.Fatalf("read %s: %v", b.InitialAdminPath(), err)
	}
	return admin
}

// TestTwoFactorSecretsSealedAtRest: the broker keeps two-factor secrets
// sealed with a key of its own (secrets.key, private) beside the
// database, which holds none in the clear; restarted, it opens them with
// the same key. Without that key the codes no longer match, and a
// recovery code still signs in.
func TestTwoFactorSecretsSealedAtRest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := New(ctx, testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	password := readAdmin(t, b).Password
	secret, _, err := b.auth.BeginTOTP(ctx, mustUser(t, b, "admin"), "127.0.0.1", password)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	code, _ := auth.TOTPCode(secret, now)
	recovery, err := b.auth.ConfirmTOTP(ctx, &auth.Principal{User: mustUser(t, b, "admin")}, code)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.close(); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, SecretsKeyFile)
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v, want a private file", SecretsKeyFile, fi, err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "tether.db")); err != nil || bytes.Contains(data, []byte(secret)) {
		t.Fatalf("the database holds the two-factor secret in the clear (%v)", err)
	}

	b, err = New(ctx, testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	code, _ = auth.TOTPCode(secret, now.Add(30*time.Second))
	if _, _, _, err := b.auth.Login(ctx, "127.0.0.1", "admin", password, code); err != nil {
		t.Fatalf("after a restart, the code: %v", err)
	}
	if err := b.close(); err != nil {
		t.Fatal(err)
	}

	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	cfg := testConfig(t, dir)
	cfg.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	b, err = New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if !strings.Contains(logged.String(), "do not open with the data directory's key") {
		t.Errorf("a start without the key that sealed the secrets does not say so:\n%s", logged.String())
	}
	code, _ = auth.TOTPCode(secret, now.Add(60*time.Second))
	if _, _, _, err := b.auth.Login(ctx, "127.0.0.1", "admin", password, code); !errors.Is(err, auth.ErrBadTOTP) {
		t.Errorf("without the key, the code: %v, want ErrBadTOTP", err)
	}
	if _, _, _, err := b.auth.Login(ctx, "127.0.0.2", "admin", password, recovery[0]); err != nil {
		t.Errorf("without the key, a recovery code: %v", err)
	}
}
