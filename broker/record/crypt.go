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

// decryptPart returns the plaintext of an encrypted part. A torn last
// record (a crash mid-write) ends the plaintext with errTorn.
func decryptPart(key []byte, name string, data []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	var out []byte
	for n := uint64(0); len(data) > 0; n++ {
		if len(data) < 4 {
			return out, errTorn
		}
		size := int(binary.BigEndian.Uint32(data))
		if size < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead || size > maxRecord+recordExtra {
			return out, fmt.Errorf("record %d of %s has an impossible length %d", n+1, name, size)
		}
		if len(data) < 4+size {
			return out, errTorn
		}
		rec := data[4 : 4+size]
		plain, err := aead.Open(nil, rec[:chacha20poly1305.NonceSizeX], rec[chacha20poly1305.NonceSizeX:], recordAD(name, n))
		if err != nil {
			return out, fmt.Errorf("record %d of %s does not decrypt: wrong key, or changed", n+1, name)
		}
		out = append(out, plain...)
		data = data[4+size:]
	}
	return out, nil
}

var errTorn = errors.New("the last record is incomplete")

// ReadPart returns the sealed content of a part of an archive, decrypted
// when the archive is encrypted (key may be nil otherwise). See OpenPart.
func ReadPart(dir string, m *Manifest, name string, key []byte) ([]byte, error) {
	f, p, err := openSealed(dir, m, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if m.Encrypted && key == nil {
		return nil, ErrNoKey
	}
	data, err := io.ReadAll(io.LimitReader(f, p.Size))
	if err != nil || !m.Encrypted {
		return data, err
	}
	plain, err := decryptPart(key, name, data)
	if errors.Is(err, errTorn) {
		return plain, nil // a part cut short of its seal: its complete records (verify names it)
	}
	return plain, err
}

// OpenPart returns the sealed content of a part, as ReadPart, for reading
// in pieces: an unencrypted part is read from its file as it is asked
// for, not whole (a video segment is up to 64 MiB, a log unbounded); an
// encrypted one is decrypted into memory. Close it when done.
//
// Only the bytes the manifest seals are read: what is in the file after
// them (what a stopped broker wrote after its last seal, or what someone
// who can write the recordings folder appended) is not covered by the
// signature, and is not played. A recording still being made reads up to
// its last seal, a few seconds ago: the manifest is sealed again every
// segment (4 s by default), and the player opens it first.
func OpenPart(dir string, m *Manifest, name string, key []byte) (io.ReadSeekCloser, error) {
	if m.Encrypted {
		data, err := ReadPart(dir, m, name, key)
		if err != nil {
			return nil, err
		}
		return memPart{bytes.NewReader(data)}, nil
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
	return filePart{io.NewSectionReader(f, 0, min(p.Size, st.Size())), f}, nil
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

// filePart reads the sealed bytes of a part from its file.
type filePart struct {
	*io.SectionReader
	f *os.File
}

func (p filePart) Close() error { return p.f.Close() }

// memPart is a decrypted part.
type memPart struct{ *bytes.Reader }

func (memPart) Close() error { return nil }

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
