package record

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
)

// dirSync is one sync of a directory: what it held then, and the parts
// its manifest listed then (none when it had no manifest).
type dirSync struct {
	dir    string
	names  []string
	listed []string
}

// watchDirSyncs records every directory sync until the test ends; fail,
// when set, makes the syncs of a directory fail.
type dirSyncs struct {
	mu    sync.Mutex
	syncs []dirSync
	fail  func(dir string) error
}

func watchDirSyncs(t *testing.T) *dirSyncs {
	t.Helper()
	w := &dirSyncs{}
	real := syncDir
	syncDir = func(dir string) error {
		s := dirSync{dir: dir}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			s.names = append(s.names, e.Name())
		}
		if m, _, err := ReadManifest(dir); err == nil {
			for _, p := range m.Parts {
				s.listed = append(s.listed, p.Name)
			}
		}
		w.mu.Lock()
		w.syncs = append(w.syncs, s)
		fail := w.fail
		w.mu.Unlock()
		if fail != nil {
			if err := fail(dir); err != nil {
				return err
			}
		}
		return real(dir)
	}
	t.Cleanup(func() { syncDir = real })
	return w
}

func (w *dirSyncs) of(dir string) []dirSync {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []dirSync
	for _, s := range w.syncs {
		if s.dir == dir {
			out = append(out, s)
		}
	}
	return out
}

// TestArchiveEntriesSynced: the directory entries that must outlast a
// power cut are synced where they are made or removed: the archive's
// entry in the recordings directory when it is created and when
// retention deletes it, and every part (each sealed video segment, the
// event log, a transcript) before the manifest that first lists it takes
// its name, and that manifest after.
func TestArchiveEntriesSynced(t *testing.T) {
	w := watchDirSyncs(t)
	key := testKey(t)
	root := t.TempDir()
	m, dir := recordSample(t, root, key)

	created := slices.ContainsFunc(w.of(root), func(s dirSync) bool { return slices.Contains(s.names, filepath.Base(dir)) })
	if !created {
		t.Error("the recordings directory was not synced once the archive was created in it")
	}

	syncs := w.of(dir)
	if len(syncs) == 0 {
		t.Fatal("the archive's directory was never synced")
	}
	for _, p := range m.Parts {
		before := slices.ContainsFunc(syncs, func(s dirSync) bool {
			return slices.Contains(s.names, p.Name) && !slices.Contains(s.listed, p.Name)
		})
		if !before {
			t.Errorf("%s (%s) was not synced into the archive before a manifest listed it", p.Name, p.Kind)
		}
	}
	last := syncs[len(syncs)-1]
	if !slices.Equal(last.listed, partNames(m)) || slices.ContainsFunc(last.names, func(n string) bool { return filepath.Ext(n) == ".new" }) {
		t.Errorf("the last sync of the archive saw %v listing %v, not the final manifest in place", last.names, last.listed)
	}

	r, err := New(Config{Dir: root, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	n := len(w.of(root))
	if err := r.Delete(filepath.Base(dir)); err != nil {
		t.Fatal(err)
	}
	after := w.of(root)[n:]
	if !slices.ContainsFunc(after, func(s dirSync) bool { return !slices.Contains(s.names, filepath.Base(dir)) }) {
		t.Error("the recordings directory was not synced after retention deleted the archive")
	}
}

func partNames(m *Manifest) []string {
	var out []string
	for _, p := range m.Parts {
		out = append(out, p.Name)
	}
	return out
}

// TestDirSyncFailureReported: an archive whose entry cannot be put on
// disk does not start (recording is required), leaving nothing behind,
// and a deletion that cannot be is reported, not audited as done.
func TestDirSyncFailureReported(t *testing.T) {
	w := watchDirSyncs(t)
	key := testKey(t)
	root := t.TempDir()
	_, dir := recordSample(t, root, key)
	r, err := New(Config{Dir: root, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.fail = func(d string) error {
		if d == root {
			return &os.PathError{Op: "sync", Path: d, Err: syscall.EIO}
		}
		return nil
	}
	w.mu.Unlock()

	s, err := r.Start(Info{Session: "s_unsynced"})
	if !errors.Is(err, syscall.EIO) {
		if s != nil {
			s.Finish("test")
		}
		t.Errorf("start with the archive's entry not synced: %v, want the I/O error", err)
	}
	if _, err := os.Stat(filepath.Join(root, "s_unsynced")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed start left its archive behind (%v)", err)
	}
	if err := r.Delete(filepath.Base(dir)); !errors.Is(err, syscall.EIO) {
		t.Errorf("delete with the removal not synced: %v, want the I/O error", err)
	}
}
