package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRedeemCode(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	u := &User{Username: "tech", PasswordHash: "x", Role: "technician", CreatedAt: now}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := s.CreateSession(ctx, &Session{ID: id, CodeHash: "hash-" + id, CodeExpiresAt: now.Add(10 * time.Minute), CreatedBy: u.ID, State: StateWaiting, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RedeemCode(ctx, "nope", now); !errors.Is(err, ErrCodeUnknown) {
		t.Fatalf("unknown code: %v", err)
	}
	if _, err := s.RedeemCode(ctx, "hash-b", now.Add(10*time.Minute)); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("expired code: %v", err)
	}

	// Many hosts racing with the same code: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, used := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.RedeemCode(ctx, "hash-a", now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrCodeUsed):
				used++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || used != 7 {
		t.Fatalf("wins = %d, used = %d; want 1 and 7", wins, used)
	}

	if err := s.EndSession(ctx, "a", "first", now); err != nil {
		t.Fatal(err)
	}
	if err := s.EndSession(ctx, "a", "second", now); err != nil {
		t.Fatal(err)
	}
	got, err := s.SessionByID(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateEnded || got.EndReason != "first" || got.EndedAt.IsZero() {
		t.Fatalf("ended session = %+v", got)
	}
	// An ended session's code cannot be redeemed even before expiry.
	if _, err := s.RedeemCode(ctx, "hash-a", now); !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("code of ended session: %v", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &User{Username: "a", PasswordHash: "h", Role: "admin", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &User{Username: "a", PasswordHash: "h", Role: "admin", CreatedAt: time.Now()}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate user: %v", err)
	}
	s.Close()
	s, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.CountUsers(ctx); err != nil || n != 1 {
		t.Fatalf("users after reopen = %d, %v", n, err)
	}
}
