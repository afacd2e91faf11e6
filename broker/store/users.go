package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// User is an account that logs in to the console or owns API keys.
type User struct {
	ID           int64
	Username     string
	PasswordHash string
	Role         string
	CreatedAt    time.Time
}

// APIKey is an integration credential; only its hash is stored.
type APIKey struct {
	ID         string
	UserID     int64
	Name       string
	Hash       string
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// Login is a console login session, found by the hash of its cookie token.
type Login struct {
	TokenHash string
	UserID    int64
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CountUsers returns how many accounts exist (zero on first start).
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n)
	return n, err
}

// CreateUser adds an account and fills in its ID.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	res, err := s.db.ExecContext(ctx,
		"INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
		u.Username, u.PasswordHash, u.Role, ms(u.CreatedAt))
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("user %q: %w", u.Username, ErrConflict)
		}
		return fmt.Errorf("create user: %w", err)
	}
	u.ID, err = res.LastInsertId()
	return err
}

const userColumns = "id, username, password_hash, role, created_at"

func scanUser(row *sql.Row) (*User, error) {
	var u User
	var created sql.NullInt64
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Role, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	u.CreatedAt = fromMS(created)
	return &u, nil
}

// UserByName looks an account up by its username.
func (s *Store) UserByName(ctx context.Context, username string) (*User, error) {
	return scanUser(s.db.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE username = ?", username))
}

// UserByID looks an account up by its ID.
func (s *Store) UserByID(ctx context.Context, id int64) (*User, error) {
	return scanUser(s.db.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE id = ?", id))
}

// CreateAPIKey stores a key's hash.
func (s *Store) CreateAPIKey(ctx context.Context, k *APIKey) error {
	_, err := s.db.ExecContext(ctx,
		"INSERT INTO api_keys (id, user_id, name, hash, created_at) VALUES (?, ?, ?, ?, ?)",
		k.ID, k.UserID, k.Name, k.Hash, ms(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	return nil
}

// UseAPIKey finds a key by hash and records that it was used now.
func (s *Store) UseAPIKey(ctx context.Context, hash string, now time.Time) (*APIKey, error) {
	var k APIKey
	var created, used sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		"UPDATE api_keys SET last_used_at = ? WHERE hash = ? RETURNING id, user_id, name, hash, created_at, last_used_at",
		ms(now), hash).Scan(&k.ID, &k.UserID, &k.Name, &k.Hash, &created, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up API key: %w", err)
	}
	k.CreatedAt, k.LastUsedAt = fromMS(created), fromMS(used)
	return &k, nil
}

// CreateLogin stores a new console login.
func (s *Store) CreateLogin(ctx context.Context, l *Login) error {
	_, err := s.db.ExecContext(ctx,
		"INSERT INTO logins (token_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
		l.TokenHash, l.UserID, l.CSRF, ms(l.CreatedAt), ms(l.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create login: %w", err)
	}
	return nil
}

// LoginByToken finds an unexpired login by the hash of its token.
func (s *Store) LoginByToken(ctx context.Context, tokenHash string, now time.Time) (*Login, error) {
	var l Login
	var created, expires sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		"SELECT token_hash, user_id, csrf, created_at, expires_at FROM logins WHERE token_hash = ? AND expires_at > ?",
		tokenHash, ms(now)).Scan(&l.TokenHash, &l.UserID, &l.CSRF, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up login: %w", err)
	}
	l.CreatedAt, l.ExpiresAt = fromMS(created), fromMS(expires)
	return &l, nil
}

// DeleteLogin ends a console login.
func (s *Store) DeleteLogin(ctx context.Context, tokenHash string) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM logins WHERE token_hash = ?", tokenHash)
	return err
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
