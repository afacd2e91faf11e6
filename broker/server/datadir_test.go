package server

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// logBuffer collects a broker's log lines; the broker logs from its own
// goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestDataDirIsPrivate: the database holds password hashes and secrets. A
// data directory any user of the machine can open is made private, with a
// log line that says so, and the database and its -wal and -shm files
// are readable by the broker's account alone, also one an older broker
// left readable by everyone.
func TestDataDirIsPrivate(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	db := filepath.Join(dir, "tether.db")
	for round := range 2 {
		if round == 0 {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		} else {
			// As an older broker left them.
			os.Chmod(db, 0o644)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var log logBuffer
		cfg := testConfig(t, dir)
		cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
		b, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if m := perm(t, dir); m != 0o700 {
			t.Errorf("round %d: data directory mode %04o, want 0700", round, m)
		}
		if !strings.Contains(log.String(), `msg="the data directory could be opened by other users of this machine; it is now private`) ||
			!strings.Contains(log.String(), "was=0755 now=0700") {
			t.Errorf("round %d: the change was not logged:\n%s", round, log.String())
		}
		for _, f := range []string{db, db + "-wal", db + "-shm"} {
			if m := perm(t, f); m != 0o600 {
				t.Errorf("round %d: %s mode %04o, want 0600", round, filepath.Base(f), m)
			}
		}
		if err := b.close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDataDirCannotBeMadePrivate: a data directory open to everyone whose
// mode cannot be changed (here a read-only file system) stops the broker
// with a message that says what to do.
func TestDataDirCannotBeMadePrivate(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a read-only tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	b, err := New(context.Background(), testConfig(t, dir))
	if err == nil {
		b.close()
		t.Fatal("the broker started on a data directory open to every user")
	}
	want := "the data directory " + dir + " can be opened by other users of this machine (mode 0755) and the broker could not change that"
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "make it mode 0700") {
		t.Errorf("error %q, want it to contain %q and say what to do", err, want)
	}
}
