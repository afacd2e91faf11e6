package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-support/tether/broker/auth"
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

func readAdmin(t *testing.T, b *Broker) InitialAdmin {
	t.Helper()
	var admin InitialAdmin
	data, err := os.ReadFile(b.InitialAdminPath())
	if err != nil || json.Unmarshal(data, &admin) != nil {
		t.Fatalf("read %s: %v", b.InitialAdminPath(), err)
	}
	return admin
}
