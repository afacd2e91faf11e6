package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDecryptedCopy: a decrypted copy of an encrypted archive reads in the
// clear, as a directory or a zip, and verifies; a change to it is caught.
func TestDecryptedCopy(t *testing.T) {
	r, src, enc := encryptedArchive(t, "s_dec")
	pub := r.PublicKey()
	out := t.TempDir()
	copyDir := filepath.Join(out, "s_dec")
	if _, err := Decrypt(src, copyDir, enc); err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	for name, want := range map[string]string{EventsFile: `"type":"consent.granted"`, "shell-1.cast": "whoami", "video-0001.webm": "V_VP8"} {
		data, err := os.ReadFile(filepath.Join(copyDir, name))
		if err != nil || !strings.Contains(string(data), want) {
			t.Errorf("%s of the copy does not read %q in the clear: %v", name, want, err)
		}
	}
	if video, _ := os.ReadFile(filepath.Join(copyDir, "video-0001.webm")); !bytes.HasPrefix(video, []byte{0x1a, 0x45, 0xdf, 0xa3}) {
		t.Error("the copy's segment is not WebM")
	}
	rep, err := VerifyWith(copyDir, pub, nil)
	if err != nil || !rep.OK() || !rep.Decrypted || rep.EventLines < 3 || !rep.TrustedKey {
		t.Fatalf("verify the copy: %v %+v", err, rep)
	}
	var report strings.Builder
	WriteReport(&report, copyDir, rep)
	if !strings.Contains(report.String(), "verified (decrypted copy)") {
		t.Errorf("the report does not say it is a decrypted copy:\n%s", report.String())
	}

	zipped := filepath.Join(out, "s_dec.zip")
	if _, err := Decrypt(src, zipped, enc); err != nil {
		t.Fatalf("decrypt to a zip: %v", err)
	}
	if rep, err := VerifyPath(zipped, pub, nil); err != nil || !rep.OK() || !rep.Decrypted {
		t.Fatalf("verify the zipped copy: %v %+v", err, rep)
	}

	// A changed segment, and an event added with decrypted.json updated
	// to match, are both caught.
	video := filepath.Join(copyDir, "video-0001.webm")
	data, _ := os.ReadFile(video)
	data[len(data)-10] ^= 1
	os.WriteFile(video, data, 0o600)
	if rep, _ := VerifyWith(copyDir, pub, nil); rep.OK() || !strings.Contains(rep.Problems[0].String(), "video-0001.webm") {
		t.Errorf("a changed segment of the copy: %v", rep.Problems)
	}
	data[len(data)-10] ^= 1
	os.WriteFile(video, data, 0o600)
	events := filepath.Join(copyDir, EventsFile)
	lines, _ := os.ReadFile(events)
	res := CheckChain(bytes.NewReader(lines), "s_dec")
	extra, _ := json.Marshal(Event{Seq: res.Lines + 1, Type: "file.sent", Actor: "tech", Prev: res.Head})
	lines = append(append(lines, extra...), '\n')
	os.WriteFile(events, lines, 0o600)
	var list Decrypted
	raw, _ := os.ReadFile(filepath.Join(copyDir, DecryptedFile))
	json.Unmarshal(raw, &list)
	for i, p := range list.Parts {
		if p.Name == EventsFile {
			list.Parts[i].Size, list.Parts[i].SHA256, _ = fileHash(events)
		}
	}
	raw, _ = json.Marshal(list)
	os.WriteFile(filepath.Join(copyDir, DecryptedFile), raw, 0o600)
	if rep, _ := VerifyWith(copyDir, pub, nil); rep.OK() || !strings.Contains(rep.Problems[0].String(), "lines were added") {
		t.Errorf("an event added to the copy: %v", rep.Problems)
	}
}

// TestDecryptInPieces: a long archive is decrypted a record at a time,
// never whole in memory, to a directory and to a zip.
func TestDecryptInPieces(t *testing.T) {
	_, src, enc := encryptedArchiveOf(t, "s_long", 200<<10)
	var parts int64
	m, _, err := ReadManifest(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Parts {
		parts += p.Size
	}
	for _, name := range []string{"copy", "copy.zip"} {
		dst := filepath.Join(t.TempDir(), name)
		alloc := allocated(func() { _, err = Decrypt(src, dst, enc) })
		if err != nil {
			t.Fatalf("decrypt to %s: %v", name, err)
		}
		// Held whole, the parts cost several times their size (38 MB for 8 MB
		// once); a record at a time, about half of it, and the count is the
		// whole process's, other tests' goroutines winding down included.
		if alloc > uint64(parts) {
			t.Errorf("decrypting %d bytes of parts to %s allocated %d bytes: they were held in memory", parts, name, alloc)
		}
	}
}

// TestDecryptDiskFull: a copy that does not fit on its disk fails with the
// cause, not as a damaged archive, and leaves nothing half written.
func TestDecryptDiskFull(t *testing.T) {
	mnt := smallDisk(t, "1m")
	_, src, enc := encryptedArchiveOf(t, "s_full", 200<<10)
	for _, name := range []string{"copy", "copy.zip"} {
		dst := filepath.Join(mnt, name)
		_, err := Decrypt(src, dst, enc)
		if err == nil || errors.Is(err, ErrNotIntact) || !strings.Contains(err.Error(), "no space left") {
			t.Errorf("decrypt to %s on a full disk: %v", name, err)
		}
		if _, err := os.Lstat(dst); err == nil {
			t.Errorf("a half-written %s was left", name)
		}
	}
}

// TestDecryptRefuses: the wrong key, a damaged archive, one that is not
// encrypted and an output that exists each get a reason, and nothing is
// written.
func TestDecryptRefuses(t *testing.T) {
	_, src, enc := encryptedArchive(t, "s_ref")
	out := t.TempDir()

	dst := filepath.Join(out, "copy")
	if _, err := Decrypt(src, dst, bytes.Repeat([]byte{8}, EncryptionKeySize)); !errors.Is(err, ErrWrongKey) {
		t.Errorf("with the wrong key: %v", err)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Error("a copy was written with the wrong key")
	}

	existing := filepath.Join(out, "taken.zip")
	os.WriteFile(existing, []byte("someone else's file"), 0o600)
	if _, err := Decrypt(src, existing, enc); !errors.Is(err, ErrOutputExists) {
		t.Errorf("onto an existing file: %v", err)
	}
	if data, _ := os.ReadFile(existing); string(data) != "someone else's file" {
		t.Error("an existing file was overwritten")
	}

	plain, err := New(Config{Dir: t.TempDir(), Key: testKey(t), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := plain.Start(Info{Session: "s_plain"})
	s.Finish("done")
	if _, err := Decrypt(s.Dir(), dst, enc); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("an archive that is not encrypted: %v", err)
	}

	video := filepath.Join(src, "video-0001.webm")
	data, _ := os.ReadFile(video)
	data[len(data)/2] ^= 1
	os.WriteFile(video, data, 0o600)
	rep, err := Decrypt(src, dst, enc)
	if !errors.Is(err, ErrNotIntact) || rep == nil || len(rep.Problems) == 0 || rep.Problems[0].Part != "video-0001.webm" {
		t.Errorf("a damaged archive: %v %+v", err, rep)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Error("a copy was written of a damaged archive")
	}
}
