package record

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Key files in the broker's data directory.
const (
	KeyFile       = "recording-key.pem"     // private, mode 0600, never served
	PublicKeyFile = "recording-key.pub.pem" // what auditors verify against
)

// LoadOrCreateKey returns the broker's archive signing key from dir,
// generating it on first start.
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, KeyFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return createKey(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "TETHER ARCHIVE SIGNING KEY" || len(block.Bytes) != ed25519.SeedSize {
		return nil, fmt.Errorf("signing key %s is damaged: restore it from backup or move it away to start a new one", path)
	}
	return ed25519.NewKeyFromSeed(block.Bytes), nil
}

func createKey(dir string) (ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "TETHER ARCHIVE SIGNING KEY", Bytes: priv.Seed()})
	// Written whole and synced before it takes its name: a start that
	// failed half way (a full disk, a crash) leaves no key file that the
	// next start would refuse as damaged.
	if err := PlaceFile(dir, KeyFile, privPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	if err := os.Remove(filepath.Join(dir, PublicKeyFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("write public key: %w", err)
	}
	if err := PlaceFile(dir, PublicKeyFile, PublicKeyPEM(pub), 0o644); err != nil {
		return nil, fmt.Errorf("write public key: %w", err)
	}
	return priv, nil
}

// PlaceFile writes data to dir/name, which must not exist yet, so that
// the name appears only once the file is whole and on disk.
func PlaceFile(dir, name string, data []byte, mode os.FileMode) error {
	tmp := filepath.Join(dir, name+".new")
	err := os.WriteFile(tmp, data, mode)
	if err == nil {
		err = syncFile(tmp)
	}
	if err == nil {
		err = os.Link(tmp, filepath.Join(dir, name)) // fails if another start placed it first
	}
	os.Remove(tmp)
	if err != nil {
		return err
	}
	return syncDir(dir)
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// PublicKeyPEM encodes a public key for auditors.
func PublicKeyPEM(pub ed25519.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "TETHER ARCHIVE PUBLIC KEY", Bytes: pub})
}

// ParsePublicKey reads a key as written by PublicKeyPEM, or plain base64.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	if block, _ := pem.Decode(data); block != nil {
		switch block.Type {
		case "TETHER ARCHIVE PUBLIC KEY":
		case "TETHER ARCHIVE SIGNING KEY":
			// Its seed is as long as a public key: taken for one, every
			// archive would read as signed by another key.
			return nil, fmt.Errorf("this is the broker's private signing key (%s); give its public key, %s", KeyFile, PublicKeyFile)
		default:
			return nil, fmt.Errorf("a PEM %q is not an archive public key (%s)", block.Type, PublicKeyFile)
		}
		data = block.Bytes
	} else {
		b, err := base64.StdEncoding.DecodeString(string(trimSpace(data)))
		if err != nil {
			return nil, errors.New("public key is neither PEM nor base64")
		}
		data = b
	}
	if len(data) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key has %d bytes, want %d", len(data), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(data), nil
}

// Fingerprint is a short, stable name for a public key.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + hex.EncodeToString(sum[:8])
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
