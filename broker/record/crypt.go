package record

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// Encryption at rest. With a key configured, every part is written as a
// sequence of records: a 4-byte big-endian length, then a 24-byte random
// nonce and the XChaCha20-Poly1305 ciphertext of a chunk (an event line,
// a transcript line, up to 1 MiB of a video segment). The part's name and
// the record's index are the associated data, so records cannot be moved
// between parts or reordered. The manifest hashes the encrypted bytes:
// verifying signature and hashes needs no key; reading needs it.

// EncryptionKeySize is the length of the key, in bytes.
const EncryptionKeySize = chacha20poly1305.KeySize

const (
	maxRecord   = 1 << 20 // plaintext per record
	recordExtra = 4 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
)

// ErrNoKey is returned when an encrypted archive is read without its key.
var ErrNoKey = errors.New("the archive is encrypted: its key is needed to read it")

// LoadEncryptionKey reads a key file: 32 bytes as 64 hex digits or base64.
// The file must be readable by its owner only.
func LoadEncryptionKey(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("recording encryption key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("recording encryption key %s is readable by others (mode %v): chmod 600 it", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recording encryption key: %w", err)
	}
	text := strings.TrimSpace(string(data))
	if key, err := hex.DecodeString(text); err == nil && len(key) == EncryptionKeySize {
		return key, nil
	}
	if key, err := base64.StdEncoding.DecodeString(text); err == nil && len(key) == EncryptionKeySize {
		return key, nil
	}
	return nil, fmt.Errorf("recording encryption key %s must hold %d bytes as hex or base64 (e.g. from: (umask 077; openssl rand -hex 32 > KEYFILE))", path, EncryptionKeySize)
}

// partCipher encrypts one part's records in order.
type partCipher struct {
	aead cipher.AEAD
	name string
	n    uint64 // records sealed so far
}

func newPartCipher(key []byte, name string) (*partCipher, error) {
	if key == nil {
		return nil, nil
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("recording encryption: %w", err)
	}
	return &partCipher{aead: aead, name: name}, nil
}

func recordAD(name string, n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(name+"\x00"), n)
}

// seal returns the records for plain (split when larger than maxRecord).
func (c *partCipher) seal(plain []byte) []byte {
	var out []byte
	for first := true; first || len(plain) > 0; first = false {
		chunk := plain[:min(len(plain), maxRecord)]
		plain = plain[len(chunk):]
		nonce := make([]byte, chacha20poly1305.NonceSizeX)
		rand.Read(nonce)
		ct := c.aead.Seal(nil, nonce, chunk, recordAD(c.name, c.n))
		c.n++
		out = binary.BigEndian.AppendUint32(out, uint32(len(nonce)+len(ct)))
		out = append(out, nonce...)
		out = append(out, ct...)
	}
	return out
}

// recordLength reads the length in a record's 4-byte header, and checks
// that a record can have it.
func recordLength(head []byte, n uint64, name string) (int, error) {
	size := int(binary.BigEndian.Uint32(head))
	if size < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead || size > maxRecord+recordExtra-4 {
		return 0, fmt.Errorf("record %d of %s has an impossible length %d", n+1, name, size)
	}
	return size, nil
}

// openRecord decrypts record n of part name (its bytes after the header)
// into plain, whose memory it reuses.
func openRecord(aead cipher.AEAD, name string, n uint64, rec, plain []byte) ([]byte, error) {
	plain, err := aead.Open(plain[:0], rec[:chacha20poly1305.NonceSizeX], rec[chacha20poly1305.NonceSizeX:], recordAD(name, n))
	if err != nil {
		return nil, fmt.Errorf("record %d of %s does not decrypt: wrong key, or changed", n+1, name)
	}
	return plain, nil
}

// decrypter decrypts the records of encrypted parts, a record at a time,
// reusing its memory from one record and one part to the next.
type decrypter struct {
	aead       cipher.AEAD
	rec, plain []byte
}

func newDecrypter(key []byte) (*decrypter, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	return &decrypter{aead: aead}, nil
}

// copy writes the plaintext of the encrypted part name, read from r, to w
// and returns how many bytes it wrote. A torn last record (a crash
// mid-write) ends it with errTorn, after the complete ones.
func (d *decrypter) copy(name string, r io.Reader, w io.Writer) (int64, error) {
	var head [4]byte
	var written int64
	for n := uint64(0); ; n++ {
		if _, err := io.ReadFull(r, head[:]); err == io.EOF {
			return written, nil
		} else if err != nil {
			return written, torn(err)
		}
		size, err := recordLength(head[:], n, name)
		if err != nil {
			return written, err
		}
		d.rec = slices.Grow(d.rec[:0], size)[:size]
		if _, err := io.ReadFull(r, d.rec); err != nil {
			return written, torn(err)
		}
		if d.plain, err = openRecord(d.aead, name, n, d.rec, d.plain); err != nil {
			return written, err
		}
		if _, err := w.Write(d.plain); err != nil {
			return written, err
		}
		written += int64(len(d.plain))
	}
}

// torn names a read that ended inside a record.
func torn(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errTorn
	}
	return err
}

// decryptPart returns the plaintext of an encrypted part held in memory.
// A torn last record ends the plaintext with errTorn.
func decryptPart(key []byte, name string, data []byte) ([]byte, error) {
	d, err := newDecrypter(key)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = d.copy(name, bytes.NewReader(data), &out)
	return out.Bytes(), err
}

var errTorn = errors.New("the last record is incomplete")

// OpenPart returns the sealed content of a part, decrypted when the
// archive is encrypted (key may be nil otherwise), for reading in pieces:
// it is read from its file as it is asked for, never whole (a video
// segment is up to 64 MiB, a log unbounded). Close it when done.
//
// Only the bytes the manifest seals are read: what is in the file after
// them (what a stopped broker wrote after its last seal, or what someone
// who can write the recordings folder appended) is not covered by the
// signature, and is not played. A recording still being made reads up to
// its last seal, a few seconds ago: the manifest is sealed again every
// segment (4 s by default), and the player opens it first.
func OpenPart(dir string, m *Manifest, name string, key []byte) (io.ReadSeekCloser, error) {
	if m.Encrypted && key == nil {
		return nil, ErrNoKey
	}
	f, p, err := openSealed(dir, m, name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	// A file shorter than its seal (damaged) is served as far as it goes,
	// so that the length served is the length read.
	sealed := io.NewSectionReader(f, 0, min(p.Size, st.Size()))
	if !m.Encrypted {
		return filePart{sealed, f}, nil
	}
	c, err := openCryptPart(sealed, key, name)
	if err != nil {
		f.Close()
		return nil, err
	}
	return filePart{c, f}, nil
}

// cryptPart reads the plaintext of an encrypted part a record at a time:
// it lists where each record starts once (reading the 4-byte headers),
// and decrypts a record only when a read reaches it, so that a part is
// never held whole and a seek costs one record. A torn last record (a
// crash mid-write) is left out: the complete ones are the part.
type cryptPart struct {
	r     *io.SectionReader // the encrypted part
	aead  cipher.AEAD
	name  string
	at    []int64 // where record i starts in the part
	start []int64 // where record i's plaintext starts; its last entry is the length
	pos   int64
	n     int    // the record in plain, or -1
	plain []byte // its plaintext
	rec   []byte
}

func openCryptPart(r *io.SectionReader, key []byte, name string) (*cryptPart, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	c := &cryptPart{r: r, aead: aead, name: name, start: []int64{0}, n: -1}
	// The headers are read through a window of the part, not one read
	// each: an event log is a record per line.
	window := make([]byte, 64<<10)
	var seen []byte // window's bytes from offset seenAt
	var seenAt int64
	for off := int64(0); off+4 <= r.Size(); {
		if off+4 > seenAt+int64(len(seen)) {
			k, err := r.ReadAt(window, off)
			if k < 4 {
				return nil, torn(err)
			}
			seen, seenAt = window[:k], off
		}
		size, err := recordLength(seen[off-seenAt:], uint64(len(c.at)), name)
		if err != nil {
			return nil, err
		}
		if off+4+int64(size) > r.Size() {
			break // torn
		}
		c.at = append(c.at, off)
		c.start = append(c.start, c.start[len(c.start)-1]+int64(size-chacha20poly1305.NonceSizeX-chacha20poly1305.Overhead))
		off += 4 + int64(size)
		// No read ever reaches a record with nothing in it: it is
		// checked now, so that a forged one fails here as it would
		// in a whole read.
		if i := len(c.at) - 1; c.start[i] == c.start[i+1] {
			if err := c.load(i); err != nil {
				return nil, err
			}
		}
	}
	// The first record tells at once whether the key opens the part.
	if len(c.at) > 0 {
		if err := c.load(0); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// load decrypts record i into c.plain.
func (c *cryptPart) load(i int) error {
	if c.n == i {
		return nil
	}
	size := int(c.start[i+1]-c.start[i]) + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
	c.rec = slices.Grow(c.rec[:0], size)[:size]
	// A read that fills rec may also say it reached the end: that is fine.
	if n, err := c.r.ReadAt(c.rec, c.at[i]+4); n < size {
		return torn(err)
	}
	c.n = -1
	plain, err := openRecord(c.aead, c.name, uint64(i), c.rec, c.plain)
	if err != nil {
		return err
	}
	c.plain, c.n = plain, i
	return nil
}

func (c *cryptPart) size() int64 { return c.start[len(c.start)-1] }

func (c *cryptPart) Read(p []byte) (int, error) {
	if c.pos >= c.size() {
		return 0, io.EOF
	}
	// The record holding c.pos: the first one ending after it.
	i := sort.Search(len(c.at), func(i int) bool { return c.start[i+1] > c.pos })
	if err := c.load(i); err != nil {
		return 0, err
	}
	n := copy(p, c.plain[c.pos-c.start[i]:])
	c.pos += int64(n)
	return n, nil
}

func (c *cryptPart) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += c.pos
	case io.SeekEnd:
		offset += c.size()
	}
	if offset < 0 {
		return 0, errors.New("seek before the start of the part")
	}
	c.pos = offset
	return offset, nil
}

// openSealed opens a part the manifest lists, and returns what it seals.
func openSealed(dir string, m *Manifest, name string) (*os.File, Part, error) {
	if !safeName(name) {
		return nil, Part{}, fmt.Errorf("invalid part name %q", name)
	}
	i := slices.IndexFunc(m.Parts, func(p Part) bool { return p.Name == name })
	if i < 0 {
		return nil, Part{}, fmt.Errorf("%s is not a part of the archive: %w", name, os.ErrNotExist)
	}
	f, err := os.Open(filepath.Join(dir, name))
	return f, m.Parts[i], err
}

// filePart reads the sealed content of a part from its file.
type filePart struct {
	io.ReadSeeker
	f *os.File
}

func (p filePart) Close() error { return p.f.Close() }

// KeyCheck is what CheckEncryptionKey found in a recordings directory.
type KeyCheck struct {
	Encrypted  int // archives encrypted at rest
	Unreadable int // of those, the ones the key given cannot read (all of them without a key)
}

// CheckEncryptionKey counts the archives under dir that are encrypted at
// rest, and those that key (nil: none) cannot read. A broker restarted
// without its key, or with another one, records and starts as usual; this
// lets it say so at start rather than when a supervisor cannot replay. It
// reads each manifest and, with a key, the first record of each encrypted
// event log only, so it stays cheap with many archives.
func CheckEncryptionKey(dir string, key []byte) (KeyCheck, error) {
	var c KeyCheck
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("list recordings: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || !sessionIDPattern.MatchString(e.Name()) {
			continue
		}
		archive := filepath.Join(dir, e.Name())
		m, _, err := ReadManifest(archive)
		if err != nil || !m.Encrypted {
			continue
		}
		c.Encrypted++
		if key == nil {
			c.Unreadable++
		} else if ok, err := firstRecordOpens(filepath.Join(archive, EventsFile), EventsFile, key); err == nil && !ok {
			c.Unreadable++
		}
	}
	return c, nil
}
