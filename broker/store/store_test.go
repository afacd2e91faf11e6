package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// technician adds a technician's account named name, made at at.
func technician(t *testing.T, s *Store, name string, at time.Time) *User {
	t.Helper()
	u := &User{Username: name, PasswordHash: "x", Role: "technician", CreatedAt: at}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestRedeemCode(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	u := technician(t, s, "tech", now)
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

	if err := s.EndSession(ctx, "a", "technician", "first", now); err != nil {
		t.Fatal(err)
	}
	if err := s.EndSession(ctx, "a", "host_lost", "second", now); err != nil {
		t.Fatal(err)
	}
	got, err := s.SessionByID(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateEnded || got.EndReason != "first" || got.EndCause != "technician" || got.EndedAt.IsZero() {
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

// TestOpenOddPath: the database is the file at the path given, whatever
// its name holds: a data directory named "support #2?" or "100%" does not
// open another database (the path up to the "#"), or fail.
func TestOpenOddPath(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	for _, dir := range []string{"support #2?", "100%41", "a b"} {
		path := filepath.Join(root, dir, "t.db")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		s, err := OpenSQLite(ctx, path)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		err = s.CreateUser(ctx, &User{Username: "a", PasswordHash: "h", Role: "admin", CreatedAt: time.Now()})
		s.Close()
		if err != nil {
			t.Fatalf("%s: a first user in a new database: %v", dir, err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%s: the database is not where it was asked for: %v", dir, err)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 3 {
		t.Fatalf("files beside the data directories: %v", entries)
	}
}

// TestLastAlive: a session's last sign of life is the latest of its
// creation, its code's use, its last alive mark and its last audit entry;
// what was stored from the time given on (a restarted broker's own notes)
// is no sign of life, and an ended session is marked no more.
func TestLastAlive(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	u := technician(t, s, "tech", now)
	for _, id := range []string{"a", "b"} {
		if err := s.CreateSession(ctx, &Session{ID: id, CodeHash: "hash-" + id, CodeExpiresAt: now.Add(10 * time.Minute), CreatedBy: u.ID, State: StateWaiting, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	restart := now.Add(20 * time.Hour)
	last := func(id string) time.Time {
		t.Helper()
		at, err := s.LastAlive(ctx, id, restart)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	if got := last("a"); !got.Equal(now) {
		t.Errorf("a new session's last sign of life is %s, want its creation %s", got, now)
	}
	if _, err := s.RedeemCode(ctx, "hash-a", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := last("a"); !got.Equal(now.Add(time.Minute)) {
		t.Errorf("after the code's use: %s", got)
	}
	s.AddEvent(ctx, &Event{Session: "a", At: now.Add(90 * time.Second), Actor: "user", Type: "consent.granted"})
	if err := s.MarkAlive(ctx, []string{"a", "b"}, now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// a's host joined, but its joining was not written: the mark records it.
	if a, err := s.SessionByID(ctx, "a"); err != nil || a.State != StateActive {
		t.Errorf("a session marked alive is %v (%v), want active", a, err)
	}
	s.AddEvent(ctx, &Event{Session: "a", At: now.Add(150 * time.Second), Actor: "user", Type: "consent.changed"})
	s.AddEvent(ctx, &Event{Session: "a", At: restart, Actor: "broker", Type: "recording.incomplete"})
	if got := last("a"); !got.Equal(now.Add(150 * time.Second)) {
		t.Errorf("a's last sign of life is %s, want its last entry before the restart at 14:02:30", got)
	}
	if got := last("b"); !got.Equal(now.Add(2 * time.Minute)) {
		t.Errorf("b's last sign of life is %s, want its alive mark at 14:02", got)
	}
	if err := s.EndSession(ctx, "b", "technician", "ended", now.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	s.MarkAlive(ctx, []string{"b"}, now.Add(4*time.Minute))
	if got := last("b"); !got.Equal(now.Add(2 * time.Minute)) {
		t.Errorf("an ended session was marked alive: %s", got)
	}
	if b, err := s.SessionByID(ctx, "b"); err != nil || b.State != StateEnded {
		t.Errorf("an ended session marked alive is %v (%v)", b, err)
	}
	if _, err := s.LastAlive(ctx, "nope", restart); !errors.Is(err, ErrNotFound) {
		t.Errorf("no such session: %v", err)
	}
}

// TestLiveAt: a session is live from the user's first yes, whatever was
// asked or allowed after it, and in a listing as in a lookup.
func TestLiveAt(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	u := technician(t, s, "tech", now)
	if err := s.CreateSession(ctx, &Session{ID: "a", CodeHash: "hash-a", CodeExpiresAt: now.Add(10 * time.Minute), CreatedBy: u.ID, State: StateWaiting, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	liveAt := func() time.Time {
		t.Helper()
		sess, err := s.SessionByID(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		list, err := s.ListSessions(ctx, SessionFilter{})
		if err != nil || len(list) != 1 {
			t.Fatalf("list: %v, %d sessions", err, len(list))
		}
		if !list[0].LiveAt.Equal(sess.LiveAt) {
			t.Errorf("listed live at %s, looked up live at %s", list[0].LiveAt, sess.LiveAt)
		}
		return sess.LiveAt
	}
	s.AddEvent(ctx, &Event{Session: "a", At: now.Add(time.Minute), Actor: "user", Type: "host.connected"})
	s.AddEvent(ctx, &Event{Session: "a", At: now.Add(2 * time.Minute), Actor: "user", Type: "consent.denied"})
	if got := liveAt(); !got.IsZero() {
		t.Errorf("live at %s before the user let anyone in", got)
	}
	s.AddEvent(ctx, &Event{Session: "a", At: now.Add(3 * time.Minute), Actor: "user", Type: "consent.granted"})
	s.AddEvent(ctx, &Event{Session: "a", At: now.Add(5 * time.Minute), Actor: "user", Type: "consent.granted"})
	if got := liveAt(); !got.Equal(now.Add(3 * time.Minute)) {
		t.Errorf("live at %s, want the first yes at 15:03", got)
	}
}

// TestNewerDatabaseRefused: a database written by a newer broker (an
// upgrade undone by putting the old binary back) is refused, with both
// versions and the way back, and left as it was.
func TestNewerDatabaseRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tether.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	newer := len(migrations) + 1
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", newer)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenSQLite(ctx, path)
	if err == nil {
		s.Close()
		t.Fatal("a database from a newer broker was accepted")
	}
	want := fmt.Sprintf("the database %s was written by a newer broker (database version %d, this broker knows up to version %d)", path, newer, len(migrations))
	if !errors.Is(err, ErrNewerDatabase) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "restore the backup") {
		t.Errorf("error %q, want it to contain %q and the backup advice", err, want)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version int
	if err := db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != newer {
		t.Errorf("the refused database's version became %d (%v), want %d", version, err, newer)
	}
}

// TestCheckCatchesReadOnlyDatabase: a file system the kernel turned
// read-only after an error (ext4's errors=remount-ro) still reads, and
// takes no writes: the health check says so. It needs root to mount an
// ext4 image, and is skipped where it cannot.
func TestCheckCatchesReadOnlyDatabase(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount an ext4 image (CI runs as root)")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	dir := t.TempDir()
	if out, err := exec.Command("truncate", "-s", "16M", img).CombinedOutput(); err != nil {
		t.Skipf("make a disk image: %v %s", err, out)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", img, dir).CombinedOutput(); err != nil {
		t.Skipf("mount an ext4 image: %v %s", err, out)
	}
	var dev unix.Stat_t
	if err := unix.Stat(dir, &dev); err != nil {
		t.Fatal(err)
	}
	trigger := fmt.Sprintf("/sys/fs/ext4/loop%d/trigger_fs_error", unix.Minor(dev.Dev))
	ctx := context.Background()
	s, err := OpenSQLite(ctx, filepath.Join(dir, "tether.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		exec.Command("umount", dir).Run()
	})
	if err := s.Check(ctx); err != nil {
		t.Fatalf("a working database fails the check: %v", err)
	}
	if err := os.WriteFile(trigger, []byte("test\n"), 0); err != nil {
		t.Skipf("make the file system fail: %v", err)
	}
	s.checkedAt = time.Time{} // the next check writes again at once
	if err := s.Check(ctx); err == nil {
		t.Error("a database on a file system turned read-only passes the check")
	}
	if _, err := s.WebhookEndpoints(ctx); err != nil {
		t.Errorf("the database no longer reads: %v", err)
	}
}
