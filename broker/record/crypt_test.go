package record

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// readPart returns the whole sealed content of a part, as OpenPart reads it.
func readPart(dir string, m *Manifest, name string, key []byte) ([]byte, error) {
	part, err := OpenPart(dir, m, name, key)
	if err != nil {
		return nil, err
	}
	defer part.Close()
	return io.ReadAll(part)
}

// allocated returns how many bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestEncryptedPartReadInPieces: a part of an encrypted archive is read
// as the player reads it (its length, then ranges here and there) without
// being decrypted whole, and reads as its decrypted copy does.
func TestEncryptedPartReadInPieces(t *testing.T) {
	_, dir, enc := encryptedArchiveOf(t, "s_pieces", 200<<10)
	clear := filepath.Join(t.TempDir(), "clear")
	if _, err := Decrypt(dir, clear, enc); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(clear, "video-0001.webm"))
	if err != nil || len(want) < 4*maxRecord {
		t.Fatalf("the segment is %d bytes (%v): want one of several records", len(want), err)
	}
	m, _, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}

	buf := make([]byte, 64<<10)
	var part io.ReadSeekCloser
	alloc := allocated(func() {
		if part, err = OpenPart(dir, m, "video-0001.webm", enc); err != nil {
			return
		}
		size, _ := part.Seek(0, io.SeekEnd)
		if size != int64(len(want)) {
			t.Errorf("the part says it is %d bytes; its copy is %d", size, len(want))
		}
		for _, at := range []int64{0, int64(len(want)) / 2, maxRecord - 100, int64(len(want)) - 1000, 10} {
			part.Seek(at, io.SeekStart)
			n, err := io.ReadFull(part, buf[:min(len(buf), len(want)-int(at))])
			if err != nil || !bytes.Equal(buf[:n], want[at:at+int64(n)]) {
				t.Errorf("%d bytes read at %d differ from the copy (%v)", n, at, err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	if alloc > uint64(len(want))/2 {
		t.Errorf("reading ranges of a %d-byte part allocated %d bytes: it was decrypted whole", len(want), alloc)
	}
	part.Seek(0, io.SeekStart)
	if all, err := io.ReadAll(part); err != nil || !bytes.Equal(all, want) {
		t.Errorf("the whole part read back differs from its copy (%d bytes against %d): %v", len(all), len(want), err)
	}

	// A record changed in the middle: what comes before it reads, and the
	// read that reaches it fails instead of serving it.
	path := filepath.Join(dir, "video-0001.webm")
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 1
	os.WriteFile(path, data, 0o600)
	part, err = OpenPart(dir, m, "video-0001.webm", enc)
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	if n, err := io.ReadFull(part, buf); err != nil || !bytes.Equal(buf[:n], want[:n]) {
		t.Errorf("the start of a part changed further on: %v", err)
	}
	if _, err := io.ReadAll(part); err == nil || !strings.Contains(err.Error(), "does not decrypt") {
		t.Errorf("reading through the changed record: %v", err)
	}
}
