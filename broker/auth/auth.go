// Package auth authenticates the people and integrations that use the
// broker: argon2id passwords, console logins held in HttpOnly cookies with a
// CSRF token, and API keys stored hashed.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tether-support/tether/broker/store"
)

// Roles.
const (
	RoleTechnician = "technician"
	RoleSupervisor = "supervisor"
	RoleAdmin      = "admin"
)

// CookieName holds the console login token.
const CookieName = "tether_login"

// API keys start with this prefix so that leaked keys are easy to spot.
const apiKeyPrefix = "tth_"

// Errors.
var (
	ErrBadCredentials  = errors.New("wrong username or password")
	ErrUnauthenticated = errors.New("not logged in")
	ErrLockedOut       = errors.New("too many failed logins")
)

// Principal is who a request acts as.
type Principal struct {
	User *store.User
	// CSRF is the login's CSRF token; empty for API keys and bearer tokens,
	// which a browser never attaches by itself.
	CSRF string
	// Cookie is true when the request was authenticated by the login
	// cookie, and so must carry the CSRF token to change anything.
	Cookie bool
}

// Config configures an Authenticator.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger
	Now    func() time.Time
	// LoginTTL is the absolute lifetime of a console login.
	LoginTTL time.Duration
}

// Authenticator checks credentials and issues logins.
type Authenticator struct {
	cfg      Config
	mu       sync.Mutex
	failures map[string]*failure // by username, for lockout
}

type failure struct {
	count int
	until time.Time
}

func (c *Config) checkAndSetDefaults() error {
	if c.Store == nil {
		return errors.New("auth: missing Store")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LoginTTL == 0 {
		c.LoginTTL = 12 * time.Hour
	}
	return nil
}

// New returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return nil, err
	}
	cfg.Logger = cfg.Logger.With("component", "auth")
	return &Authenticator{cfg: cfg, failures: map[string]*failure{}}, nil
}

// RandomToken returns n random bytes, URL-safe base64 encoded.
func RandomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the OS has no entropy: nothing is safe
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is how tokens, keys and codes are stored: never in the clear.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateUser adds an account with a hashed password.
func (a *Authenticator) CreateUser(ctx context.Context, username, password, role string) (*store.User, error) {
	hash, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	u := &store.User{Username: username, PasswordHash: hash, Role: role, CreatedAt: a.cfg.Now()}
	if err := a.cfg.Store.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// CreateAPIKey issues a key for user and returns it; only its hash is kept.
func (a *Authenticator) CreateAPIKey(ctx context.Context, user *store.User, name string) (string, error) {
	key := apiKeyPrefix + RandomToken(32)
	err := a.cfg.Store.CreateAPIKey(ctx, &store.APIKey{
		ID: "key_" + RandomToken(9), UserID: user.ID, Name: name, Hash: HashToken(key), CreatedAt: a.cfg.Now(),
	})
	if err != nil {
		return "", err
	}
	return key, nil
}

// lockout: after maxFailures wrong passwords in a row the account refuses
// logins for lockoutFor, doubling with each further failure.
const (
	maxFailures = 5
	lockoutFor  = 30 * time.Second
)

// Login checks a username and password and opens a console login. It
// returns the cookie token and the login record.
func (a *Authenticator) Login(ctx context.Context, username, password string) (string, *store.Login, *store.User, error) {
	now := a.cfg.Now()
	a.mu.Lock()
	f := a.failures[username]
	if f != nil && now.Before(f.until) {
		a.mu.Unlock()
		return "", nil, nil, fmt.Errorf("%w: try again in %s", ErrLockedOut, f.until.Sub(now).Round(time.Second))
	}
	a.mu.Unlock()

	u, err := a.cfg.Store.UserByName(ctx, username)
	ok := false
	if err == nil {
		ok, err = CheckPassword(u.PasswordHash, password)
	} else if errors.Is(err, store.ErrNotFound) {
		// Spend the same time as a real check so that timing does not
		// reveal which usernames exist.
		CheckPassword(dummyHash(), password)
		err = nil
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("log in: %w", err)
	}
	if !ok {
		a.recordFailure(username, now)
		a.cfg.Logger.WarnContext(ctx, "failed login", "user", username)
		return "", nil, nil, ErrBadCredentials
	}
	a.mu.Lock()
	delete(a.failures, username)
	a.mu.Unlock()

	token := RandomToken(32)
	login := &store.Login{TokenHash: HashToken(token), UserID: u.ID, CSRF: RandomToken(24), CreatedAt: now, ExpiresAt: now.Add(a.cfg.LoginTTL)}
	if err := a.cfg.Store.CreateLogin(ctx, login); err != nil {
		return "", nil, nil, err
	}
	a.cfg.Logger.InfoContext(ctx, "login", "user", username)
	return token, login, u, nil
}

// dummyHash is made on first need, not at start: argon2id takes 19 MiB.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("timing equaliser")
	return h
})

func (a *Authenticator) recordFailure(username string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.failures[username]
	if f == nil {
		if len(a.failures) > 10000 { // bound memory under a spray of usernames
			a.failures = map[string]*failure{}
		}
		f = &failure{}
		a.failures[username] = f
	}
	f.count++
	if f.count >= maxFailures {
		f.until = now.Add(lockoutFor << min(f.count-maxFailures, 10))
	}
}

// Logout ends the login behind token.
func (a *Authenticator) Logout(ctx context.Context, token string) error {
	return a.cfg.Store.DeleteLogin(ctx, HashToken(token))
}

// Authenticate finds who r acts as: an `Authorization: Bearer` API key or
// login token, or the login cookie.
func (a *Authenticator) Authenticate(r *http.Request) (*Principal, error) {
	ctx := r.Context()
	now := a.cfg.Now()
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || token == "" {
			return nil, ErrUnauthenticated
		}
		if strings.HasPrefix(token, apiKeyPrefix) {
			key, err := a.cfg.Store.UseAPIKey(ctx, HashToken(token), now)
			if err != nil {
				return nil, ErrUnauthenticated
			}
			return a.principal(ctx, key.UserID, "", false)
		}
		login, err := a.cfg.Store.LoginByToken(ctx, HashToken(token), now)
		if err != nil {
			return nil, ErrUnauthenticated
		}
		return a.principal(ctx, login.UserID, "", false)
	}
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil, ErrUnauthenticated
	}
	login, err := a.cfg.Store.LoginByToken(ctx, HashToken(c.Value), now)
	if err != nil {
		return nil, ErrUnauthenticated
	}
	return a.principal(ctx, login.UserID, login.CSRF, true)
}

func (a *Authenticator) principal(ctx context.Context, userID int64, csrf string, cookie bool) (*Principal, error) {
	u, err := a.cfg.Store.UserByID(ctx, userID)
	if err != nil {
		return nil, ErrUnauthenticated
	}
	return &Principal{User: u, CSRF: csrf, Cookie: cookie}, nil
}

// CheckCSRF rejects a cookie-authenticated request that changes state
// without the login's CSRF token.
func CheckCSRF(p *Principal, r *http.Request) bool {
	if !p.Cookie {
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	got := r.Header.Get("X-CSRF-Token")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRF)) == 1
}
