package xtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// LinklessDisk mounts a FAT file system, which has no hard links, through
// FUSE until the test ends: the user's inbox on a USB stick. It needs
// root, /dev/fuse, and mkfs.vfat and fusefat (Debian dosfstools and
// fusefat); the test is skipped without them.
func LinklessDisk(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a FAT image through FUSE needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("mounting a FAT image through FUSE needs /dev/fuse: %v", err)
	}
	for _, tool := range []string{"mkfs.vfat", "fusefat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("mounting a FAT image through FUSE needs %s (Debian packages dosfstools and fusefat): %v", tool, err)
		}
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "stick.img"), filepath.Join(dir, "stick")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.vfat", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	// fusefat stays in the background, writing to its output: a file,
	// not a pipe the test would wait on. -s: one thread, as it was
	// written for.
	log, err := os.Create(filepath.Join(dir, "fusefat.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	mount := exec.Command("fusefat", "-s", "-o", "rw+", img, mnt)
	mount.Stdout, mount.Stderr = log, log
	if err := mount.Run(); err != nil {
		out, _ := os.ReadFile(log.Name())
		t.Fatalf("fusefat: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			if out2, err2 := exec.Command("fusermount", "-u", mnt).CombinedOutput(); err2 != nil {
				t.Errorf("unmounting %s: %v %s; %v %s", mnt, err, out, err2, out2)
			}
		}
	})
	return mnt
}
