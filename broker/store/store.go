// Package store persists the broker's state: accounts, API keys, login
// sessions and support sessions. The embedded default is SQLite (pure Go,
// WAL) in the broker's data directory.
package store

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a unique value already exists.
var ErrConflict = errors.New("already exists")

// ErrNewerDatabase is returned when the database was written by a newer
// broker: its schema is past what this broker knows, and migrations only
// go forward.
var ErrNewerDatabase = errors.New("was written by a newer broker")

// Store is the broker's database.
type Store struct {
	db *sql.DB
	// sealer seals two-factor secrets (see SealSecrets); nil: kept as given.
	sealer cipher.AEAD

	checkMu   sync.Mutex
	checkedAt time.Time // of the last write Check tried
	checkErr  error     // what it answered
}

// lower_text(s) is s in lower case, every letter: SQLite's LIKE ignores
// the case of ASCII letters only, and a search for "büro" must find
// "BÜRO-PC".
func init() {
	sqlite.MustRegisterDeterministicScalarFunction("lower_text", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if s, ok := args[0].(string); ok {
			return strings.ToLower(s), nil
		}
		return args[0], nil
	})
}

// migrations run in order, once each; the index of the last one applied is
// kept in PRAGMA user_version.
var migrations = []string{
	`CREATE TABLE users (
		id            INTEGER PRIMARY KEY,
		username      TEXT NOT NULL UNIQUE,
		password_hash TEXT NOT NULL,
		role          TEXT NOT NULL,
		created_at    INTEGER NOT NULL
	);
	CREATE TABLE api_keys (
		id           TEXT PRIMARY KEY,
		user_id      INTEGER NOT NULL REFERENCES users(id),
		name         TEXT NOT NULL,
		hash         TEXT NOT NULL UNIQUE,
		created_at   INTEGER NOT NULL,
		last_used_at INTEGER
	);
	CREATE TABLE logins (
		token_hash TEXT PRIMARY KEY,
		user_id    INTEGER NOT NULL REFERENCES users(id),
		csrf       TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	);
	CREATE TABLE sessions (
		id              TEXT PRIMARY KEY,
		code_hash       TEXT NOT NULL UNIQUE,
		code_expires_at INTEGER NOT NULL,
		code_used_at    INTEGER,
		created_by      INTEGER NOT NULL REFERENCES users(id),
		ticket_id       TEXT NOT NULL DEFAULT '',
		state           TEXT NOT NULL,
		host_json       TEXT NOT NULL DEFAULT '',
		created_at      INTEGER NOT NULL,
		ended_at        INTEGER,
		end_reason      TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX sessions_created_at ON sessions(created_at);`,
	`ALTER TABLE sessions ADD COLUMN permissions TEXT NOT NULL DEFAULT 'view,control,clipboard';
	CREATE TABLE session_events (
		id         INTEGER PRIMARY KEY,
		session_id TEXT NOT NULL REFERENCES sessions(id),
		at         INTEGER NOT NULL,
		actor      TEXT NOT NULL,
		type       TEXT NOT NULL,
		detail     TEXT NOT NULL DEFAULT '{}'
	);
	CREATE INDEX session_events_session ON session_events(session_id, id);`,
	`CREATE TABLE session_participants (
		session_id TEXT NOT NULL REFERENCES sessions(id),
		user_id    INTEGER NOT NULL REFERENCES users(id),
		added_by   INTEGER NOT NULL REFERENCES users(id),
		added_at   INTEGER NOT NULL,
		PRIMARY KEY (session_id, user_id)
	);`,
	`CREATE TABLE webhook_endpoints (
		id          TEXT PRIMARY KEY,
		url         TEXT NOT NULL,
		secret      TEXT NOT NULL,
		events      TEXT NOT NULL,
		description TEXT NOT NULL DEFAULT '',
		enabled     INTEGER NOT NULL DEFAULT 1,
		created_by  INTEGER NOT NULL REFERENCES users(id),
		created_at  INTEGER NOT NULL
	);
	CREATE TABLE webhook_events (
		id         TEXT PRIMARY KEY,
		type       TEXT NOT NULL,
		session_id TEXT NOT NULL DEFAULT '',
		once_key   TEXT UNIQUE,
		payload    TEXT NOT NULL,
		created_at INTEGER NOT NULL
	);
	CREATE TABLE webhook_deliveries (
		id              TEXT PRIMARY KEY,
		endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
		event_id        TEXT NOT NULL REFERENCES webhook_events(id),
		state           TEXT NOT NULL,
		attempts        INTEGER NOT NULL DEFAULT 0,
		next_attempt_at INTEGER,
		last_status     INTEGER NOT NULL DEFAULT 0,
		last_error      TEXT NOT NULL DEFAULT '',
		redelivery_of   TEXT NOT NULL DEFAULT '',
		created_at      INTEGER NOT NULL,
		updated_at      INTEGER NOT NULL
	);
	CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_at);
	CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, created_at);
	CREATE TABLE webhook_attempts (
		id          INTEGER PRIMARY KEY,
		delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
		attempt     INTEGER NOT NULL,
		at          INTEGER NOT NULL,
		status_code INTEGER NOT NULL DEFAULT 0,
		error       TEXT NOT NULL DEFAULT '',
		duration_ms INTEGER NOT NULL,
		response    TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id, attempt);`,
	// Accounts: disabling, TOTP, scoped and revocable API keys, idle
	// timeouts, per-role settings; ticket references; audited code attempts.
	`ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE users ADD COLUMN totp_secret TEXT NOT NULL DEFAULT '';
	ALTER TABLE users ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
	ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;
	UPDATE api_keys SET scopes = 'sessions:create,sessions:read,sessions:write,sessions:join,recordings:read,webhooks:admin,users:admin';
	ALTER TABLE logins ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE logins ADD COLUMN must_enrol INTEGER NOT NULL DEFAULT 0;
	UPDATE logins SET last_seen_at = created_at;
	ALTER TABLE sessions ADD COLUMN ticket_system TEXT NOT NULL DEFAULT '';
	ALTER TABLE sessions ADD COLUMN ticket_url TEXT NOT NULL DEFAULT '';
	ALTER TABLE sessions ADD COLUMN ticket_title TEXT NOT NULL DEFAULT '';
	ALTER TABLE sessions ADD COLUMN initiated_by TEXT NOT NULL DEFAULT 'technician';
	CREATE INDEX sessions_ticket ON sessions(ticket_id);
	CREATE TABLE settings (
		key   TEXT PRIMARY KEY,
		value TEXT NOT NULL
	);
	CREATE TABLE code_attempts (
		id         INTEGER PRIMARY KEY,
		at         INTEGER NOT NULL,
		source     TEXT NOT NULL,
		via        TEXT NOT NULL,
		outcome    TEXT NOT NULL,
		session_id TEXT NOT NULL DEFAULT '',
		actor      TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX code_attempts_at ON code_attempts(at);`,
	`CREATE TABLE recordings (
		session_id     TEXT PRIMARY KEY REFERENCES sessions(id),
		state          TEXT NOT NULL,
		started_at     INTEGER NOT NULL,
		ended_at       INTEGER,
		size_bytes     INTEGER NOT NULL DEFAULT 0,
		duration_ms    INTEGER NOT NULL DEFAULT 0,
		segments       INTEGER NOT NULL DEFAULT 0,
		events         INTEGER NOT NULL DEFAULT 0,
		shells         INTEGER NOT NULL DEFAULT 0,
		files          INTEGER NOT NULL DEFAULT 0,
		clipboard      INTEGER NOT NULL DEFAULT 0,
		frames_relayed INTEGER NOT NULL DEFAULT 0,
		frames_written INTEGER NOT NULL DEFAULT 0,
		manifest_sha256 TEXT NOT NULL DEFAULT '',
		note           TEXT NOT NULL DEFAULT '',
		deleted_at     INTEGER
	);
	CREATE INDEX recordings_started_at ON recordings(started_at);`,
	// alive_at: the last time the broker noted the session going on (see
	// MarkAlive).
	`ALTER TABLE sessions ADD COLUMN alive_at INTEGER;`,
	// The hub looks for expired codes every second (see EndExpiredCodes).
	`CREATE INDEX sessions_waiting ON sessions(code_expires_at) WHERE state = 'waiting';`,
	// A webhook secret replaced by a new one keeps signing deliveries,
	// beside the new one, until old_secret_until: the ticket system has
	// time to save the new secret (see SetWebhookEndpointSecret).
	`ALTER TABLE webhook_endpoints ADD COLUMN old_secret TEXT NOT NULL DEFAULT '';
	ALTER TABLE webhook_endpoints ADD COLUMN old_secret_until INTEGER;`,
	// The health check writes its time here: a database that can be read
	// but not written (its file system turned read-only) is no use.
	`CREATE TABLE health (
		id         INTEGER PRIMARY KEY CHECK (id = 1),
		checked_at INTEGER NOT NULL
	);`,
	// former: a technician who handed the session over. They keep no
	// access to it; a search for what they worked on still finds it.
	`ALTER TABLE session_participants ADD COLUMN former INTEGER NOT NULL DEFAULT 0;`,
	// The scheduler asks each enabled endpoint for its next due delivery
	// every second (see NextDueWebhookDeliveries). Without the endpoint
	// first, that walks every endpoint's due deliveries, a disabled one's
	// whole backlog included, once per endpoint.
	`CREATE INDEX webhook_deliveries_endpoint_due ON webhook_deliveries(endpoint_id, state, next_attempt_at, created_at);`,
	// The webhooks look every minute for sessions that ended lately without
	// a session.ended event (see EndedSessionsWithoutEvent).
	`CREATE INDEX sessions_ended_at ON sessions(ended_at);`,
	// Webhook history is pruned daily (see PruneWebhookHistory): events by
	// age, each checked for deliveries that still refer to it.
	`CREATE INDEX webhook_deliveries_event ON webhook_deliveries(event_id);
	CREATE INDEX webhook_events_created_at ON webhook_events(created_at);`,
	// Why a session ended, in a word, beside the sentence: the console
	// tells a code that ran out from a session that took place.
	`ALTER TABLE sessions ADD COLUMN end_cause TEXT NOT NULL DEFAULT '';`,
	// An API key may be given a last day; NULL: it works until revoked.
	`ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;`,
	// One-time codes that stand in for a two-factor code when the phone is
	// lost, hashed.
	`CREATE TABLE recovery_codes (
		user_id INTEGER NOT NULL REFERENCES users(id),
		code_hash TEXT NOT NULL,
		PRIMARY KEY (user_id, code_hash)
	);`,
}

// OpenSQLite opens (creating if needed) the SQLite database at path and
// brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	if err := privateFiles(path); err != nil {
		return nil, err
	}
	// The path goes in a URI: escaped, a "?", "#" or "%" in it (a data
	// directory named "support #2") neither cuts it short, which would
	// open another database, nor changes it.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			db.Close()
		}
	}()
	// One writer at a time is how SQLite works; a single connection also
	// keeps transactions from failing with SQLITE_BUSY.
	db.SetMaxOpenConns(1)
	if err := migrate(ctx, db); err != nil {
		if errors.Is(err, ErrNewerDatabase) {
			return nil, fmt.Errorf("the database %s %w", path, err)
		}
		return nil, fmt.Errorf("migrate database %s: %w", path, err)
	}
	ok = true
	return &Store{db: db}, nil
}

// privateFiles creates the database file readable by its owner alone,
// whatever the umask, and narrows one an older broker made readable by
// everyone: it holds password hashes, two-factor and webhook secrets.
// SQLite gives the -wal and -shm files it creates the database file's
// mode; ones left over from before are narrowed too.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open database %s: %w", path, err)
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			if err := os.Chmod(p, mode&^0o077); err != nil {
				return fmt.Errorf("make database file %s private: %w", p, err)
			}
		}
	}
	return nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("%w (database version %d, this broker knows up to version %d): start the newer broker again, or, to go back to this one, restore the backup of the data directory made before the upgrade",
			ErrNewerDatabase, version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// checkEvery is how often Check writes to the database; between, it
// answers what the last write did (anyone may ask the health check).
const checkEvery = 10 * time.Second

// Check writes to the database, for the broker's health check: one that
// can be read but takes no writes stops every session and sign-in.
func (s *Store) Check(ctx context.Context) error {
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	now := time.Now()
	if !s.checkedAt.IsZero() && now.Sub(s.checkedAt) < checkEvery {
		return s.checkErr
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO health (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at", ms(now))
	if err != nil {
		err = fmt.Errorf("the database takes no writes: %w", err)
	}
	s.checkedAt, s.checkErr = now, err
	return err
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

func nullMS(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: ms(t), Valid: true}
}
