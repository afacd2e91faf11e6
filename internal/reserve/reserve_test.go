package reserve

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestRename: where there are no hard links, a saved file never
// replaces one of the user's, nor goes through a symbolic link in its
// name's place, and a rename that fails leaves no empty file behind.
func TestRename(t *testing.T) {
	dir := t.TempDir()
	partial := filepath.Join(dir, ".tether-0123456789abcdef-4.part")
	if err := os.WriteFile(partial, []byte("sent"), 0o600); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(users, []byte("the user's"), 0o644); err != nil {
		t.Fatal(err)
	}
	targets := []string{users}
	dangling := filepath.Join(dir, "link.pdf")
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), dangling); err == nil {
		targets = append(targets, dangling) // Windows lets only some users make one
	}
	for _, target := range targets {
		if err := Rename(partial, target); !errors.Is(err, fs.ErrExist) {
			t.Errorf("saving onto %s: %v, want it refused as existing", filepath.Base(target), err)
		}
	}
	if got, _ := os.ReadFile(users); string(got) != "the user's" {
		t.Errorf("the user's file holds %q", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); err == nil {
		t.Error("a file was written through the symbolic link")
	}
	gone := filepath.Join(dir, "gone.part")
	if err := Rename(gone, filepath.Join(dir, "new.pdf")); err == nil {
		t.Error("renaming a partial file that is gone succeeded")
	}
	if _, err := os.Lstat(filepath.Join(dir, "new.pdf")); err == nil {
		t.Error("an empty file is left under the name after the rename failed")
	}
	if err := Rename(partial, filepath.Join(dir, "new.pdf")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "new.pdf")); string(got) != "sent" {
		t.Errorf("the saved file holds %q", got)
	}
	if _, err := os.Lstat(partial); err == nil {
		t.Error("the partial name stays once the file is saved")
	}
}

// TestWritable: a folder that can take a file says so and keeps nothing of
// the check; one that is not there says why.
func TestWritable(t *testing.T) {
	dir := t.TempDir()
	if err := Writable(dir); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the check left %v", entries)
	}
	if err := Writable(filepath.Join(dir, "gone")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing folder: %v", err)
	}
}
