package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Two-factor secrets are sealed (AES-256-GCM) with a key the broker keeps
// in a file of its own beside the database: a copy of the database alone,
// a backup of just that file or a dump sent with a question, gives away no
// account's second factor. A sealed secret is bound to its account: copied
// into another account's row, it does not open.
const sealedPrefix = "sealed1:"

// SecretKeySize is the size of the key SealSecrets takes.
const SecretKeySize = 32

// SealSecrets has the store seal two-factor secrets with key from now on,
// and seals those it holds in the clear (written before the store had a
// key). It is called once, before the store is in use. A secret sealed
// with another key reads as none: no code matches, while recovery codes
// and an admin's reset still work (see UnreadableSecrets).
func (s *Store) SealSecrets(ctx context.Context, key []byte) error {
	if len(key) != SecretKeySize {
		return fmt.Errorf("seal secrets: the key has %d bytes, want %d", len(key), SecretKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("seal secrets: %w", err)
	}
	if s.sealer, err = cipher.NewGCM(block); err != nil {
		return fmt.Errorf("seal secrets: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id, totp_secret FROM users WHERE totp_secret != '' AND totp_secret NOT LIKE ?", sealedPrefix+"%")
	if err != nil {
		return fmt.Errorf("seal secrets: %w", err)
	}
	plain := map[int64]string{}
	for rows.Next() {
		var id int64
		var secret string
		if err := rows.Scan(&id, &secret); err != nil {
			rows.Close()
			return fmt.Errorf("seal secrets: %w", err)
		}
		plain[id] = secret
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("seal secrets: %w", err)
	}
	for id, secret := range plain {
		// Unless it changed meanwhile: then it was written sealed.
		if _, err := s.db.ExecContext(ctx, "UPDATE users SET totp_secret = ? WHERE id = ? AND totp_secret = ?", s.seal(id, secret), id, secret); err != nil {
			return fmt.Errorf("seal secrets: %w", err)
		}
	}
	return nil
}

// UnreadableSecrets counts the accounts whose two-factor secret does not
// open with the store's key (sealed with another one).
func (s *Store) UnreadableSecrets(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, totp_secret FROM users WHERE totp_secret LIKE ?", sealedPrefix+"%")
	if err != nil {
		return 0, fmt.Errorf("check secrets: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id int64
		var stored string
		if err := rows.Scan(&id, &stored); err != nil {
			return 0, fmt.Errorf("check secrets: %w", err)
		}
		if _, err := s.open(id, stored); err != nil {
			n++
		}
	}
	return n, rows.Err()
}

// seal returns secret as the account id's row keeps it.
func (s *Store) seal(id int64, secret string) string {
	if s.sealer == nil || secret == "" {
		return secret
	}
	nonce := make([]byte, s.sealer.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(s.sealer.Seal(nonce, nonce, []byte(secret), accountData(id)))
}

var errUnsealed = errors.New("the two-factor secret does not open with the broker's key")

// open returns the secret the account id's row keeps as stored.
func (s *Store) open(id int64, stored string) (string, error) {
	sealed, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		return stored, nil
	}
	if s.sealer == nil {
		return "", errUnsealed
	}
	data, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(data) < s.sealer.NonceSize() {
		return "", errUnsealed
	}
	n := s.sealer.NonceSize()
	secret, err := s.sealer.Open(nil, data[:n], data[n:], accountData(id))
	if err != nil {
		return "", errUnsealed
	}
	return string(secret), nil
}

// accountData binds a sealed secret to its account.
func accountData(id int64) []byte { return []byte("users.totp_secret:" + strconv.FormatInt(id, 10)) }
