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
	Disabled     bool
	// TOTPSecret is the base32 RFC 6238 secret; TOTPEnabled is set once
	// the user proved they hold it. A secret without TOTPEnabled is an
	// enrolment in progress.
	TOTPSecret   string
	TOTPEnabled  bool
	TOTPLastStep int64 // the last time step accepted, so a code works once
}

// APIKey is an integration credential; only its hash is stored.
type APIKey struct {
	ID         string
	UserID     int64
	Name       string
	Hash       string
	Scopes     []string
	CreatedAt  time.Time
	LastUsedAt time.Time
	RevokedAt  time.Time
	// ExpiresAt is when the key stops working; zero: never (until revoked).
	ExpiresAt time.Time
	// Username, UserRole and UserDisabled describe the key's account as
	// it is now: a key works only within its role, and not at all while
	// the account is disabled.
	Username     string
	UserRole     string
	UserDisabled bool
}

// Login is a console login session, found by the hash of its cookie token.
type Login struct {
	TokenHash  string
	UserID     int64
	CSRF       string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastSeenAt time.Time
	// MustEnrol records that the user's role required TOTP, which the
	// user had not set up, when the login opened (the check on each
	// request follows the policy as it is then).
	MustEnrol bool
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

const userColumns = "id, username, password_hash, role, created_at, disabled, totp_secret, totp_enabled, totp_last_step"

func (s *Store) scanUser(row scanner) (*User, error) {
	var u User
	var created sql.NullInt64
	var secret string
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Role, &created, &u.Disabled, &secret, &u.TOTPEnabled, &u.TOTPLastStep); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	u.CreatedAt = fromMS(created)
	// One that does not open reads as none: no code matches it (the
	// broker says so at start).
	u.TOTPSecret, _ = s.open(u.ID, secret)
	return &u, nil
}

// UserByName looks an account up by its username.
func (s *Store) UserByName(ctx context.Context, username string) (*User, error) {
	return s.scanUser(s.db.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE username = ?", username))
}

// UserByID looks an account up by its ID.
func (s *Store) UserByID(ctx context.Context, id int64) (*User, error) {
	return s.scanUser(s.db.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE id = ?", id))
}

// ListUsers returns every account, by username.
func (s *Store) ListUsers(ctx context.Context) ([]*User, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+userColumns+" FROM users ORDER BY username")
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := s.scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// ErrCredentialsChanged is returned by SetPassword and CreateLogin when
// the account's password changed since the password was checked, or for
// CreateLogin when the account was disabled or turned two-factor
// authentication on meanwhile.
var ErrCredentialsChanged = errors.New("the account's password or state changed meanwhile")

// SetPassword sets the password hash of the account id, provided that it
// is still was, the hash the current password was checked against;
// otherwise it returns ErrCredentialsChanged. Like the other changes to an
// account, it writes its own columns only: written from the account as a
// request loaded it, the others would undo an admin disabling or demoting
// it meanwhile.
func (s *Store) SetPassword(ctx context.Context, id int64, was, hash string) error {
	res, err := s.db.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?", hash, id, was)
	if err != nil {
		return fmt.Errorf("update user %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrCredentialsChanged
	}
	return nil
}

// DeleteUser deletes the account id with its API keys and logins. Only an
// account nothing else refers to yet can go (the first admin, when its
// credentials could not be written): the database refuses to delete one
// that sessions or webhooks name.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete user %d: %w", id, err)
	}
	defer tx.Rollback()
	for _, q := range []string{"DELETE FROM logins WHERE user_id = ?", "DELETE FROM api_keys WHERE user_id = ?", "DELETE FROM recovery_codes WHERE user_id = ?", "DELETE FROM users WHERE id = ?"} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return fmt.Errorf("delete user %d: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete user %d: %w", id, err)
	}
	return nil
}

// SetTOTP sets the TOTP state of the account id; with TOTP off, the
// account's recovery codes go.
func (s *Store) SetTOTP(ctx context.Context, id int64, secret string, enabled bool, lastStep int64) error {
	return s.inTx(ctx, "set TOTP", func(tx *sql.Tx) error {
		if err := updateUser(ctx, tx, id, "totp_secret = ?, totp_enabled = ?, totp_last_step = ?", s.seal(id, secret), enabled, lastStep); err != nil || enabled {
			return err
		}
		return setRecoveryCodes(ctx, tx, id, nil)
	})
}

// EnableTOTP turns TOTP on for the account id, whose code of step was
// just shown, with a new set of recovery codes (their hashes).
func (s *Store) EnableTOTP(ctx context.Context, id int64, step int64, codeHashes []string) error {
	return s.inTx(ctx, "enable TOTP", func(tx *sql.Tx) error {
		if err := updateUser(ctx, tx, id, "totp_enabled = 1, totp_last_step = ?", step); err != nil {
			return err
		}
		return setRecoveryCodes(ctx, tx, id, codeHashes)
	})
}

// SetRecoveryCodes replaces the recovery codes (their hashes) of the
// account id.
func (s *Store) SetRecoveryCodes(ctx context.Context, id int64, codeHashes []string) error {
	return s.inTx(ctx, "set recovery codes", func(tx *sql.Tx) error {
		return setRecoveryCodes(ctx, tx, id, codeHashes)
	})
}

func setRecoveryCodes(ctx context.Context, tx *sql.Tx, id int64, codeHashes []string) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM recovery_codes WHERE user_id = ?", id); err != nil {
		return err
	}
	for _, h := range codeHashes {
		if _, err := tx.ExecContext(ctx, "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)", id, h); err != nil {
			return err
		}
	}
	return nil
}

// UseRecoveryCode uses up the recovery code of the account user whose
// hash is given: it reports whether there was one, which no longer works.
func (s *Store) UseRecoveryCode(ctx context.Context, user int64, codeHash string) (bool, error) {
	res, err := s.db.ExecContext(ctx, "DELETE FROM recovery_codes WHERE user_id = ? AND code_hash = ?", user, codeHash)
	if err != nil {
		return false, fmt.Errorf("use recovery code: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// RecoveryCodesLeft counts the unused recovery codes of the account user.
func (s *Store) RecoveryCodesLeft(ctx context.Context, user int64) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?", user).Scan(&n); err != nil {
		return 0, fmt.Errorf("count recovery codes: %w", err)
	}
	return n, nil
}

// ResetCredentials sets the password hash of the account id and turns
// its TOTP off, with its recovery codes, at once.
func (s *Store) ResetCredentials(ctx context.Context, id int64, hash string) error {
	return s.inTx(ctx, "reset credentials", func(tx *sql.Tx) error {
		if err := updateUser(ctx, tx, id, "password_hash = ?, totp_secret = '', totp_enabled = 0, totp_last_step = 0", hash); err != nil {
			return err
		}
		return setRecoveryCodes(ctx, tx, id, nil)
	})
}

// inTx runs f in a transaction, committed if f returns nil.
func (s *Store) inTx(ctx context.Context, doing string, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	defer tx.Rollback()
	if err := f(tx); errors.Is(err, ErrNotFound) {
		return err
	} else if err != nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	return nil
}

// updateUser sets columns (an SQL SET list) of the account id to args.
func updateUser(ctx context.Context, db execer, id int64, columns string, args ...any) error {
	res, err := db.ExecContext(ctx, "UPDATE users SET "+columns+" WHERE id = ?", append(args, id)...)
	if err != nil {
		return fmt.Errorf("update user %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// UseTOTPStep records that the code of step was accepted for user, unless
// a code of that step or a later one was already: each code works once.
func (s *Store) UseTOTPStep(ctx context.Context, user, step int64) (bool, error) {
	res, err := s.db.ExecContext(ctx, "UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?", step, user, step)
	if err != nil {
		return false, fmt.Errorf("record TOTP use: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ErrLastAdmin is returned when a change would leave no active admin.
var ErrLastAdmin = errors.New("the last active admin cannot be disabled or demoted")

// RoleState is an account's role and whether it is disabled.
type RoleState struct {
	Role     string
	Disabled bool
}

// SetUserRole sets the role and the disabled flag of the account id, each
// only when given (not nil), unless it is an active admin and the change
// would leave no other. It returns the account's state before and after.
// The check and the change are one transaction: counted apart, two admins
// demoting each other at the same moment both saw the other and left the
// broker with none. What is not given stays as it is, so that an admin
// disabling an account does not undo a role another admin gave it a moment
// before, nor a password changed meanwhile.
func (s *Store) SetUserRole(ctx context.Context, id int64, role *string, disabled *bool) (was, now RoleState, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return was, now, fmt.Errorf("update user %d: %w", id, err)
	}
	defer tx.Rollback()
	err = tx.QueryRowContext(ctx, "SELECT role, disabled FROM users WHERE id = ?", id).Scan(&was.Role, &was.Disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return was, now, ErrNotFound
	}
	if err != nil {
		return was, now, fmt.Errorf("update user %d: %w", id, err)
	}
	now = was
	if role != nil {
		now.Role = *role
	}
	if disabled != nil {
		now.Disabled = *disabled
	}
	if _, err := tx.ExecContext(ctx, "UPDATE users SET role = ?, disabled = ? WHERE id = ?", now.Role, now.Disabled, id); err != nil {
		return was, now, fmt.Errorf("update user %d: %w", id, err)
	}
	if was.Role == "admin" && !was.Disabled {
		var admins int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0").Scan(&admins); err != nil {
			return was, now, fmt.Errorf("update user %d: %w", id, err)
		}
		if admins == 0 {
			return was, now, ErrLastAdmin
		}
	}
	if err := tx.Commit(); err != nil {
		return was, now, fmt.Errorf("update user %d: %w", id, err)
	}
	return was, now, nil
}

// CreateAPIKey stores a key's hash.
func (s *Store) CreateAPIKey(ctx context.Context, k *APIKey) error {
	_, err := s.db.ExecContext(ctx,
		"INSERT INTO api_keys (id, user_id, name, hash, created_at, scopes, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		k.ID, k.UserID, k.Name, k.Hash, ms(k.CreatedAt), strings.Join(k.Scopes, ","), nullMS(k.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	return nil
}

const keyColumns = "k.id, k.user_id, k.name, k.hash, k.scopes, k.created_at, k.last_used_at, k.revoked_at, k.expires_at, u.username, u.role, u.disabled"

func scanKey(row scanner) (*APIKey, error) {
	var k APIKey
	var scopes string
	var created, used, revoked, expires sql.NullInt64
	if err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Hash, &scopes, &created, &used, &revoked, &expires, &k.Username, &k.UserRole, &k.UserDisabled); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	if scopes != "" {
		k.Scopes = strings.Split(scopes, ",")
	}
	k.CreatedAt, k.LastUsedAt, k.RevokedAt, k.ExpiresAt = fromMS(created), fromMS(used), fromMS(revoked), fromMS(expires)
	return &k, nil
}

// APIKeyByHash finds an unrevoked key by hash. It only reads, so that a
// key keeps working while the disk is too full to write.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*APIKey, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.hash = ? AND k.revoked_at IS NULL", hash))
	if errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("look up API key: %w", err)
	}
	return k, nil
}

// TouchAPIKey records that the key id was used now.
func (s *Store) TouchAPIKey(ctx context.Context, id string, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, "UPDATE api_keys SET last_used_at = ? WHERE id = ?", ms(now), id); err != nil {
		return fmt.Errorf("record API key use: %w", err)
	}
	return nil
}

// ListAPIKeys returns every key, newest first, revoked ones included.
func (s *Store) ListAPIKeys(ctx context.Context) ([]*APIKey, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+keyColumns+" FROM api_keys k JOIN users u ON u.id = k.user_id ORDER BY k.created_at DESC, k.id")
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	defer rows.Close()
	var out []*APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list API keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey stops a key from working; revoking twice keeps the first time.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, now time.Time) (*APIKey, error) {
	if _, err := s.db.ExecContext(ctx, "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", ms(now), id); err != nil {
		return nil, fmt.Errorf("revoke API key: %w", err)
	}
	return scanKey(s.db.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ?", id))
}

// CreateLogin stores a new console login, provided that the account is
// still as the sign-in found it, u: the password hash its password was
// checked against, not disabled and, when the sign-in asked for no code,
// two-factor authentication still off. Otherwise it returns
// ErrCredentialsChanged. A password change, reset, disabling or two-factor
// enrolment ends the account's logins, and one that came while the
// password was being checked found this login not yet stored: checked
// apart from the insertion, the sign-in would keep a login the change was
// meant to end.
func (s *Store) CreateLogin(ctx context.Context, l *Login, u *User) error {
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO logins (token_hash, user_id, csrf, created_at, expires_at, last_seen_at, must_enrol)
		 SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM users
		 WHERE id = ? AND password_hash = ? AND disabled = 0 AND (totp_enabled = 0 OR ?))`,
		l.TokenHash, l.UserID, l.CSRF, ms(l.CreatedAt), ms(l.ExpiresAt), ms(l.CreatedAt), l.MustEnrol, u.ID, u.PasswordHash, u.TOTPEnabled)
	if err != nil {
		return fmt.Errorf("create login: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrCredentialsChanged
	}
	return nil
}

// LoginByToken finds a login by the hash of its token that has passed
// neither its absolute expiry nor idle since idleAfter. It only reads;
// TouchLogin records the use.
func (s *Store) LoginByToken(ctx context.Context, tokenHash string, now, idleAfter time.Time) (*Login, error) {
	var l Login
	var created, expires, seen sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		"SELECT token_hash, user_id, csrf, created_at, expires_at, last_seen_at, must_enrol FROM logins WHERE token_hash = ? AND expires_at > ? AND last_seen_at > ?",
		tokenHash, ms(now), ms(idleAfter)).Scan(&l.TokenHash, &l.UserID, &l.CSRF, &created, &expires, &seen, &l.MustEnrol)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up login: %w", err)
	}
	l.CreatedAt, l.ExpiresAt, l.LastSeenAt = fromMS(created), fromMS(expires), fromMS(seen)
	return &l, nil
}

// TouchLogin records that l was seen now, at most every touchEvery to
// spare the disk.
func (s *Store) TouchLogin(ctx context.Context, l *Login, now time.Time) error {
	if now.Sub(l.LastSeenAt) <= touchEvery {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE logins SET last_seen_at = ? WHERE token_hash = ?", ms(now), l.TokenHash); err != nil {
		return fmt.Errorf("record login use: %w", err)
	}
	l.LastSeenAt = now
	return nil
}

// touchEvery is how stale a login's last-seen time may get.
const touchEvery = 15 * time.Second

// DeleteEndedLogins deletes the logins past their absolute expiry at now
// or unused since idleAfter, which LoginByToken no longer finds: kept, they
// would pile up with every sign-in for as long as the broker runs.
func (s *Store) DeleteEndedLogins(ctx context.Context, now, idleAfter time.Time) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM logins WHERE expires_at <= ? OR last_seen_at <= ?", ms(now), ms(idleAfter)); err != nil {
		return fmt.Errorf("delete ended logins: %w", err)
	}
	return nil
}

// DeleteLogin ends a console login.
func (s *Store) DeleteLogin(ctx context.Context, tokenHash string) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM logins WHERE token_hash = ?", tokenHash)
	return err
}

// DeleteUserLogins ends every console login of user (disabled, reset).
func (s *Store) DeleteUserLogins(ctx context.Context, user int64) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM logins WHERE user_id = ?", user)
	return err
}

// DeleteOtherLogins ends every console login of user but the one whose
// token hashes to keep (the login that changed the password).
func (s *Store) DeleteOtherLogins(ctx context.Context, user int64, keep string) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM logins WHERE user_id = ? AND token_hash != ?", user, keep)
	return err
}

// Setting returns a broker setting, or "" when unset.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// SetSetting stores a broker setting.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value)
	if err != nil {
		return fmt.Errorf("save setting %s: %w", key, err)
	}
	return nil
}

// CodeAttempt is one audited try of a support code.
type CodeAttempt struct {
	At      time.Time
	Source  string // remote address
	Via     string // host, join_page, console
	Outcome string // ok, unknown, expired, used, rate_limited, issued
	Session string
	Actor   string // username for console claims
}

// AddCodeAttempt audits a code attempt.
func (s *Store) AddCodeAttempt(ctx context.Context, a *CodeAttempt) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO code_attempts (at, source, via, outcome, session_id, actor) VALUES (?, ?, ?, ?, ?, ?)",
		ms(a.At), a.Source, a.Via, a.Outcome, a.Session, a.Actor)
	if err != nil {
		return fmt.Errorf("audit code attempt: %w", err)
	}
	return nil
}

// DeleteCodeAttempts deletes the audited code attempts made before t.
func (s *Store) DeleteCodeAttempts(ctx context.Context, t time.Time) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM code_attempts WHERE at < ?", ms(t)); err != nil {
		return fmt.Errorf("delete old code attempts: %w", err)
	}
	return nil
}

// CodeAttempts returns audited code attempts since t, newest first.
func (s *Store) CodeAttempts(ctx context.Context, since time.Time, limit int) ([]*CodeAttempt, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT at, source, via, outcome, session_id, actor FROM code_attempts WHERE at >= ? ORDER BY id DESC LIMIT ?", ms(since), limit)
	if err != nil {
		return nil, fmt.Errorf("list code attempts: %w", err)
	}
	defer rows.Close()
	var out []*CodeAttempt
	for rows.Next() {
		var a CodeAttempt
		var at sql.NullInt64
		if err := rows.Scan(&at, &a.Source, &a.Via, &a.Outcome, &a.Session, &a.Actor); err != nil {
			return nil, err
		}
		a.At = fromMS(at)
		out = append(out, &a)
	}
	return out, rows.Err()
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
