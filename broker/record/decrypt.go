package record

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// A decrypted copy. An archive encrypted at rest stays encrypted when it is
// downloaded, and whoever keeps it for a complaint must be able to read it
// away from the broker. Decrypt writes a copy with every sealed part in the
// clear, the broker's manifest.json and manifest.sig unchanged (its hashes
// are those of the encrypted parts, so the signature still holds), and
// decrypted.json, which lists the size and SHA-256 of each clear part.
// Verify then checks the signature, the event log against the chain head
// the manifest signs, and the other parts against decrypted.json only: the
// broker never signed their clear bytes, so the encrypted archive stays the
// proof that they are the broker's.

// DecryptedFile marks a decrypted copy and lists its clear parts.
const DecryptedFile = "decrypted.json"

// Decrypted is the content of decrypted.json.
type Decrypted struct {
	Note        string          `json:"note"`
	DecryptedAt time.Time       `json:"decrypted_at"`
	Parts       []DecryptedPart `json:"parts"`
}

// DecryptedPart is one part of a decrypted copy, in the clear.
type DecryptedPart struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Errors of Decrypt.
var (
	ErrNotEncrypted = errors.New("the archive is not encrypted: its parts can be read as they are (broker verify checks it; a media player plays its video-*.webm segments)")
	ErrWrongKey     = errors.New("the archive does not open with this key: it was encrypted with another one (give the key file the broker had when it recorded the session)")
	ErrNotIntact    = errors.New("the archive is not intact")
	ErrOutputExists = errors.New("already exists")
)

const decryptedNote = "A decrypted copy written by broker decrypt. manifest.json and manifest.sig are the broker's, unchanged: " +
	"their hashes are those of the encrypted parts. The event log chains to the head the manifest signs; " +
	"the other parts are listed here as they were decrypted, which the broker did not sign: the encrypted archive is the proof."

// Decrypt writes a decrypted copy of the archive at src (a directory, or
// the zip the console downloads) to dst: a zip when dst ends in .zip, else
// a directory. It first checks the archive as Verify does (without judging
// who signed it) and writes nothing when the archive is not encrypted, does
// not open with key, or is not intact; the report says what is wrong. dst
// must not exist.
func Decrypt(src, dst string, key []byte) (*Report, error) {
	if _, err := os.Lstat(dst); err == nil {
		return nil, outputExists(dst)
	}
	dir := src
	var damaged []Problem
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	if !st.IsDir() {
		tmp, err := os.MkdirTemp("", "tether-decrypt-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		if dir, damaged, err = unzipArchive(src, tmp); err != nil {
			return nil, err
		}
	}
	m, raw, err := ReadManifest(dir)
	if err == nil && !m.Encrypted {
		return nil, ErrNotEncrypted
	}
	if _, err := os.Stat(filepath.Join(dir, DecryptedFile)); err == nil {
		return nil, errors.New("the archive is already a decrypted copy: broker verify checks it, and a media player plays its video-*.webm segments")
	}
	if m != nil && !keyOpens(dir, m, key) {
		return nil, ErrWrongKey
	}
	rep, err := VerifyWith(dir, nil, key)
	if err != nil {
		return nil, err
	}
	rep.Problems = append(damaged, rep.Problems...)
	if !rep.OK() {
		return rep, ErrNotIntact
	}

	// Every part listed is decrypted up to its seal: what a stopped broker
	// wrote after it is not covered by the signature, and is left out.
	// Parts are decrypted as they are written, a record at a time: an
	// archive of hours of video never has to fit in memory.
	out := &Decrypted{Note: decryptedNote, DecryptedAt: time.Now().UTC()}
	sig, err := os.ReadFile(filepath.Join(dir, SignatureFile))
	if err != nil {
		return rep, err
	}
	files := []clearFile{
		{name: ManifestFile, from: filepath.Join(dir, ManifestFile), write: writeBytes(raw)},
		{name: SignatureFile, from: filepath.Join(dir, SignatureFile), write: writeBytes(sig)},
	}
	d, err := newDecrypter(key)
	if err != nil {
		return rep, err
	}
	for _, p := range m.Parts {
		path := filepath.Join(dir, p.Name)
		files = append(files, clearFile{name: p.Name, from: path, write: func(w io.Writer) error {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			h, sink := sha256.New(), &watchedWriter{w: w}
			n, err := d.copy(p.Name, io.LimitReader(f, p.Size), io.MultiWriter(sink, h))
			switch {
			case sink.err != nil:
				return sink.err // the copy could not be written: the archive is not to blame
			case err != nil:
				rep.problem(p.Name, "%v", err)
				return ErrNotIntact
			}
			out.Parts = append(out.Parts, DecryptedPart{Name: p.Name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
			return nil
		}})
	}
	// Written last: it lists what the parts decrypted to.
	files = append(files, clearFile{name: DecryptedFile, write: func(w io.Writer) error {
		list, _ := json.MarshalIndent(out, "", "  ")
		_, err := w.Write(append(list, '\n'))
		return err
	}})
	if strings.HasSuffix(strings.ToLower(dst), ".zip") {
		err = writeClearZip(dst, m.Session, files)
	} else {
		err = writeClearDir(dst, files)
	}
	return rep, err
}

// outputExists says that dst is taken: a copy never overwrites a file.
func outputExists(dst string) error {
	return fmt.Errorf("%s %w: give a new name, or move it away first", dst, ErrOutputExists)
}

// clearFile is one file of a decrypted copy, dated like the part it comes
// from (from), or now; write writes its content.
type clearFile struct {
	name  string
	from  string
	write func(io.Writer) error
}

func writeBytes(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// watchedWriter keeps the error of the first write to w that failed.
type watchedWriter struct {
	w   io.Writer
	err error
}

func (w *watchedWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

func (f clearFile) modTime() time.Time {
	if st, err := os.Stat(f.from); f.from != "" && err == nil {
		return st.ModTime()
	}
	return time.Now()
}

// keyOpens reports whether key opens the archive's event log, looking at
// its first record only. It answers false only when that record is as the
// broker sealed it: a damaged one is left for Verify to name.
func keyOpens(dir string, m *Manifest, key []byte) bool {
	for _, p := range m.Parts {
		if p.Kind != KindEvents || !safeName(p.Name) {
			continue
		}
		path := filepath.Join(dir, p.Name)
		if sum, err := hashPrefix(path, p.Size); err != nil || sum != p.SHA256 {
			return true
		}
		ok, err := firstRecordOpens(path, p.Name, key)
		return ok || err != nil
	}
	return true
}

// firstRecordOpens reports whether the first record of an encrypted part
// decrypts with key: a cheap test of the key, without reading the part.
// A part with no record tells nothing and counts as opening.
func firstRecordOpens(path, name string, key []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var head [4]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return true, nil
	}
	size, err := recordLength(head[:], 0, name)
	if err != nil {
		return false, err
	}
	rec := make([]byte, size)
	if _, err := io.ReadFull(f, rec); err != nil {
		return true, nil
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return false, err
	}
	_, err = openRecord(aead, name, 0, rec, nil)
	return err == nil, nil
}

// writeClearDir writes a decrypted copy as a directory, readable by its
// owner only: the parts are in the clear now.
func writeClearDir(dst string, files []clearFile) (err error) {
	if err := os.Mkdir(dst, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return outputExists(dst)
		}
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dst)
		}
	}()
	for _, f := range files {
		path := filepath.Join(dst, f.name)
		if err := writeClearFile(path, f); err != nil {
			return err
		}
		t := f.modTime()
		os.Chtimes(path, t, t)
	}
	return nil
}

func writeClearFile(path string, f clearFile) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := f.write(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeClearZip writes a decrypted copy as a zip shaped like the console's
// download: one folder named after the session, entries stored.
func writeClearZip(dst, session string, files []clearFile) (err error) {
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return outputExists(dst)
		}
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	if !safeName(session) {
		session = "archive"
	}
	zw := zip.NewWriter(out)
	for _, f := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: session + "/" + f.name, Method: zip.Store, Modified: f.modTime()})
		if err != nil {
			return err
		}
		if err := f.write(w); err != nil {
			return err
		}
	}
	return zw.Close()
}
