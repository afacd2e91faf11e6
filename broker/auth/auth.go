// Package auth authenticates the people and integrations that use the
// broker and holds the authorization policy: argon2id passwords, console
// logins held in HttpOnly cookies with a CSRF token and idle and absolute
// timeouts, lockout, TOTP two-factor authentication (RFC 6238) required per
// role when the admin says so, roles, and API keys stored hashed with
// scopes.
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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tether-support/tether/broker/store"
)

// Roles.
const (
	RoleTechnician = "technician"
	RoleSupervisor = "supervisor"
	RoleAdmin      = "admin"
)

// Roles lists every role, least to most privileged.
var Roles = []string{RoleTechnician, RoleSupervisor, RoleAdmin}

// Scopes: what a request may do. A console login may do what its role
// allows; an API key what its role allows and its scopes name.
const (
	ScopeSessionsCreate = "sessions:create" // create sessions, claim a user's code
	ScopeSessionsRead   = "sessions:read"   // list and read sessions and their events
	ScopeSessionsWrite  = "sessions:write"  // end, invite, hand over
	ScopeSessionsJoin   = "sessions:join"   // connect to a session's screen
	ScopeRecordingsRead = "recordings:read" // list and replay recordings
	ScopeWebhooksAdmin  = "webhooks:admin"  // manage webhooks
	ScopeUsersAdmin     = "users:admin"     // manage accounts, API keys, settings
	ScopeMetricsRead    = "metrics:read"    // scrape the broker's metrics (GET /metrics)
)

// AllScopes lists every scope.
var AllScopes = []string{ScopeSessionsCreate, ScopeSessionsRead, ScopeSessionsWrite, ScopeSessionsJoin,
	ScopeRecordingsRead, ScopeWebhooksAdmin, ScopeUsersAdmin, ScopeMetricsRead}

// roleScopes is the authorization policy: which scopes each role holds.
// Technicians work their own sessions and replay their recordings
// (ownership is checked per session);
// supervisors read and watch every session; admins do everything.
var roleScopes = map[string][]string{
	RoleTechnician: {ScopeSessionsCreate, ScopeSessionsRead, ScopeSessionsWrite, ScopeSessionsJoin, ScopeRecordingsRead},
	RoleSupervisor: {ScopeSessionsRead, ScopeSessionsJoin, ScopeRecordingsRead},
	RoleAdmin:      AllScopes,
}

// ValidRole reports whether role exists.
func ValidRole(role string) bool { return roleScopes[role] != nil }

// RoleAllows reports whether role holds scope.
func RoleAllows(role, scope string) bool { return slices.Contains(roleScopes[role], scope) }

// CookieName holds the console login token. The __Host- prefix has
// browsers take it only from this host, secure, for every path: a page on
// a sibling subdomain cannot plant a login of its own under the name.
const CookieName = "__Host-tether_login"

// keyUseEvery is how stale an API key's recorded last use may grow.
const keyUseEvery = time.Minute

// API keys start with this prefix so that leaked keys are easy to spot.
const apiKeyPrefix = "tth_"

// Errors.
var (
	ErrBadCredentials  = errors.New("wrong username or password")
	ErrUnauthenticated = errors.New("not logged in")
	// ErrKeyExpired: the API key was right but its last day has passed.
	ErrKeyExpired = errors.New("API key expired")
	// ErrUnavailable: the credentials could not be checked because the
	// broker's database failed; they may well be valid.
	ErrUnavailable  = errors.New("the broker cannot check logins right now")
	ErrLockedOut    = errors.New("too many failed logins")
	ErrDisabled     = errors.New("account disabled")
	ErrTOTPRequired = errors.New("two-factor code required")
	ErrBadTOTP      = errors.New("wrong two-factor code")
	ErrTOTPEnabled  = errors.New("two-factor authentication is already on")
	ErrTOTPOff      = errors.New("two-factor authentication is not on")
	ErrTOTPNeeded   = errors.New("two-factor authentication is required for this role")
	ErrWeakPassword = errors.New("password too short")
	ErrBadScopes    = errors.New("invalid scopes")
	ErrLastAdmin    = store.ErrLastAdmin
)

// MinPasswordLength is the shortest password accepted (NIST SP 800-63B
// asks for at least 8; 12 is the broker's floor).
const MinPasswordLength = 12

// Principal is who a request acts as.
type Principal struct {
	User *store.User
	// CSRF is the login's CSRF token; empty for API keys and bearer tokens,
	// which a browser never attaches by itself.
	CSRF string
	// Cookie is true when the request was authenticated by the login
	// cookie, and so must carry the CSRF token to change anything.
	Cookie bool
	// KeyID and Scopes are set for API keys, and KeyExpiresAt when the
	// key has a last day.
	KeyID        string
	Scopes       []string
	KeyExpiresAt time.Time
	// Login is the console login the request came with (cookie or bearer
	// login token); nil for API keys.
	Login *store.Login
	// MustEnrol is set while the login may only enrol in TOTP.
	MustEnrol bool
}

// LoginTokenHash is the token hash of the console login p came with; ""
// for an API key.
func (p *Principal) LoginTokenHash() string {
	if p.Login == nil {
		return ""
	}
	return p.Login.TokenHash
}

// Can reports whether p may act with scope (ownership aside).
func (p *Principal) Can(scope string) bool {
	if !RoleAllows(p.User.Role, scope) {
		return false
	}
	return p.KeyID == "" || slices.Contains(p.Scopes, scope)
}

// Config configures an Authenticator.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger
	Now    func() time.Time
	// LoginTTL is the absolute lifetime of a console login (default 12 h).
	LoginTTL time.Duration
	// IdleTimeout ends a login nobody used for this long (default 30 min).
	IdleTimeout time.Duration
	// Issuer names the broker in authenticator apps (default "Tether").
	Issuer string
}

// Authenticator checks credentials and issues logins.
type Authenticator struct {
	cfg      Config
	mu       sync.Mutex
	failures map[string]*failure // by failureKey, for lockout
	// touchWarned and lookupWarned are when a failure to record or to
	// check a login or key was last logged: once a while, not per request.
	touchWarned, lookupWarned time.Time

	// Counted for the broker's metrics since it started.
	badPasswords, badCodes, lockouts, recoverySignIns atomic.Uint64
}

// SignInCounts are the sign-in failures and lockouts since the broker
// started.
type SignInCounts struct {
	BadPasswords uint64 // a wrong password, or a username no account has
	BadCodes     uint64 // a right password with a wrong two-factor code
	Lockouts     uint64 // a source's attempts for an account, or an account's codes, refused for a while
	// RecoveryCodes are the sign-ins that gave a recovery code in place of
	// a two-factor code (not failures: a lost phone, or a stolen code).
	RecoveryCodes uint64
}

// SignInCounts returns the sign-in failures and lockouts so far.
func (a *Authenticator) SignInCounts() SignInCounts {
	return SignInCounts{BadPasswords: a.badPasswords.Load(), BadCodes: a.badCodes.Load(), Lockouts: a.lockouts.Load(), RecoveryCodes: a.recoverySignIns.Load()}
}

// storeTroubleEvery is how often the same database trouble is logged.
const storeTroubleEvery = time.Minute

// failure counts the wrong passwords for one account from one source.
type failure struct {
	count int
	last  time.Time // the last failure
	until time.Time // no attempts before this
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
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.Issuer == "" {
		c.Issuer = "Tether"
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

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the OS has no entropy: nothing is safe
	}
	return b
}

// RandomToken returns n random bytes, URL-safe base64 encoded.
func RandomToken(n int) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(n))
}

// HashToken is how tokens, keys and codes are stored: never in the clear.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// MaxUsernameLength is the longest username in bytes (the API's username
// pattern follows it).
const MaxUsernameLength = 32

// CreateUser adds an account with a hashed password.
func (a *Authenticator) CreateUser(ctx context.Context, username, password, role string) (*store.User, error) {
	if len(username) > MaxUsernameLength {
		return nil, fmt.Errorf("username: use at most %d characters", MaxUsernameLength)
	}
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

// CreateAPIKey issues a key that acts as user with scopes until expires
// (zero: until revoked), and returns it; only its hash is kept. The scopes
// must be ones the user's role holds.
func (a *Authenticator) CreateAPIKey(ctx context.Context, user *store.User, name string, scopes []string, expires time.Time) (*store.APIKey, string, error) {
	if len(scopes) == 0 {
		return nil, "", fmt.Errorf("%w: name at least one", ErrBadScopes)
	}
	for i, sc := range scopes {
		if !slices.Contains(AllScopes, sc) {
			return nil, "", fmt.Errorf("%w: unknown scope %q", ErrBadScopes, sc)
		}
		if !RoleAllows(user.Role, sc) {
			return nil, "", fmt.Errorf("%w: a %s's key cannot hold %s", ErrBadScopes, user.Role, sc)
		}
		if slices.Contains(scopes[:i], sc) {
			return nil, "", fmt.Errorf("%w: %s is named twice", ErrBadScopes, sc)
		}
	}
	key := apiKeyPrefix + RandomToken(32)
	k := &store.APIKey{
		ID: "key_" + RandomToken(9), UserID: user.ID, Username: user.Username, UserRole: user.Role, UserDisabled: user.Disabled, Name: name, Hash: HashToken(key),
		Scopes: scopes, CreatedAt: a.cfg.Now(), ExpiresAt: expires,
	}
	if err := a.cfg.Store.CreateAPIKey(ctx, k); err != nil {
		return nil, "", err
	}
	return k, key, nil
}

// Lockout: after maxFailures wrong passwords in a row for an account from
// one source (an IPv4 address or IPv6 /64, as limit.Source names it), that
// source's attempts for the account are refused for lockoutFor, doubling
// with each further failure up to maxLockout. Kept per source, a
// stranger's failures do not lock the account's owner out from anywhere
// else; capped, and forgotten after failureMemory without a failure, they
// cannot keep the owner out for long from the same network either.
// Guessing stays slow: five tries, then one each maxLockout, per source;
// and the API limits every source's attempts across all accounts.
const (
	maxFailures   = 5
	lockoutFor    = 30 * time.Second
	maxLockout    = 15 * time.Minute
	failureMemory = time.Hour
	// maxFailureEntries bounds the table under a spray of usernames and
	// sources; when it is full, the entry whose last failure is oldest
	// makes room, never the whole table (see evictOldestFailure). An
	// account's wrong codes are kept beside these, one entry per account.
	maxFailureEntries = 10000
)

// failureKey is the lockout table's key: an account's name from a source.
func failureKey(username, source string) string { return source + " " + username }

// Wrong two-factor codes are counted for the account as well, from every
// source together: only someone who knows the password gets as far as the
// code, and kept per source alone, the lockout let such a person try five
// codes from each address they have (an IPv6 /48 holds 65,536 /64s) and
// get in within hours, one in about 300,000 guesses being right. After
// maxCodeFailures wrong codes, the account's codes are refused from
// everywhere for lockoutFor, doubling to maxLockout, until a right code.
// Its owner, who knows the password too, may have to wait: a lesser harm
// than a second factor that can be guessed.
const maxCodeFailures = 10

// codeFailureKey is the lockout table's key for an account's wrong codes
// from all sources (a source is an address, never "codes").
func codeFailureKey(username string) string { return codesPrefix + username }

const codesPrefix = "codes "

// Login checks a username, password and, when the account has TOTP, its
// current code, from source (limit.Source of the request), and opens a
// console login. It returns the cookie token, the login record and the
// user.
func (a *Authenticator) Login(ctx context.Context, source, username, password, totp string) (string, *store.Login, *store.User, error) {
	// No account has a longer name. Kept in the lockout table, a name of
	// any length would let a flood of them fill the memory.
	if len(username) > MaxUsernameLength {
		a.badPasswords.Add(1)
		a.cfg.Logger.WarnContext(ctx, "failed login: no account has the username given", "source", source)
		return "", nil, nil, ErrBadCredentials
	}
	now := a.cfg.Now()
	key := failureKey(username, source)
	if err := a.lockedOut(key, now); err != nil {
		return "", nil, nil, err
	}

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
		a.badPasswords.Add(1)
		a.recordFailure(key, now)
		// What was typed as a username is logged only when it names an
		// account: people type their password into the username field,
		// and the log must not keep it.
		if u != nil {
			a.cfg.Logger.WarnContext(ctx, "failed login", "user", u.Username, "source", source)
		} else {
			a.cfg.Logger.WarnContext(ctx, "failed login: no account has the username given", "source", source)
		}
		return "", nil, nil, ErrBadCredentials
	}
	if u.TOTPEnabled {
		if totp == "" {
			return "", nil, nil, ErrTOTPRequired
		}
		codes := codeFailureKey(u.Username)
		if err := a.lockedOut(codes, now); err != nil {
			a.cfg.Logger.WarnContext(ctx, "login refused: too many wrong two-factor codes for the account", "user", u.Username, "source", source)
			return "", nil, nil, err
		}
		ok, recovery, err := a.useCode(ctx, u, totp, now)
		if err != nil {
			return "", nil, nil, err
		}
		if !ok {
			a.badCodes.Add(1)
			a.recordFailure(key, now)
			a.recordFailureAfter(codes, now, maxCodeFailures)
			a.cfg.Logger.WarnContext(ctx, "failed login: wrong two-factor code", "user", u.Username, "source", source)
			return "", nil, nil, ErrBadTOTP
		}
		a.mu.Lock()
		delete(a.failures, codes)
		a.mu.Unlock()
		if recovery {
			a.recoverySignIns.Add(1)
			left, err := a.cfg.Store.RecoveryCodesLeft(ctx, u.ID)
			if err != nil {
				return "", nil, nil, err
			}
			a.cfg.Logger.WarnContext(ctx, "a recovery code was used to sign in", "user", u.Username, "source", source, "recovery_codes_left", left)
		}
	}
	if u.Disabled {
		a.cfg.Logger.WarnContext(ctx, "login refused: account disabled", "user", u.Username, "source", source)
		return "", nil, nil, ErrDisabled
	}
	a.mu.Lock()
	delete(a.failures, key)
	a.mu.Unlock()

	mustEnrol := false
	if !u.TOTPEnabled {
		required, err := a.TOTPRequiredRoles(ctx)
		if err != nil {
			return "", nil, nil, err
		}
		mustEnrol = slices.Contains(required, u.Role)
	}
	// Each sign-in clears away the logins that have ended, so that they
	// do not pile up.
	if err := a.cfg.Store.DeleteEndedLogins(ctx, now, now.Add(-a.cfg.IdleTimeout)); err != nil {
		return "", nil, nil, err
	}
	token := RandomToken(32)
	login := &store.Login{TokenHash: HashToken(token), UserID: u.ID, CSRF: RandomToken(24), CreatedAt: now,
		ExpiresAt: now.Add(a.cfg.LoginTTL), MustEnrol: mustEnrol}
	if err := a.cfg.Store.CreateLogin(ctx, login, u); errors.Is(err, store.ErrCredentialsChanged) {
		// The password changed, the account was disabled or, for a
		// sign-in without a code, two-factor authentication turned on,
		// while the password was being checked.
		a.cfg.Logger.WarnContext(ctx, "login refused: the account's password or state changed while it was checked", "user", u.Username, "source", source)
		return "", nil, nil, ErrBadCredentials
	} else if err != nil {
		return "", nil, nil, err
	}
	a.cfg.Logger.InfoContext(ctx, "login", "user", u.Username, "source", source, "must_enrol_totp", mustEnrol)
	return token, login, u, nil
}

func (a *Authenticator) lockedOut(key string, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f := a.failures[key]; f != nil && now.Before(f.until) {
		return &LockoutError{RetryAfter: f.until.Sub(now)}
	}
	return nil
}

// LockoutError says how long a locked-out account must wait.
type LockoutError struct{ RetryAfter time.Duration }

func (e *LockoutError) Error() string {
	return fmt.Sprintf("%v: try again in %s", ErrLockedOut, e.RetryAfter.Round(time.Second))
}

func (e *LockoutError) Unwrap() error { return ErrLockedOut }

// dummyHash is made on first need, not at start: argon2id takes 19 MiB.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("timing equaliser")
	return h
})

func (a *Authenticator) recordFailure(key string, now time.Time) {
	a.recordFailureAfter(key, now, maxFailures)
}

// recordFailureAfter counts a failure for key, which locks out from the
// limit-th failure in a row on.
func (a *Authenticator) recordFailureAfter(key string, now time.Time, limit int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.failures[key]
	if f == nil {
		if len(a.failures) >= maxFailureEntries {
			a.evictOldestFailure(now)
		}
		f = &failure{}
		a.failures[key] = f
	}
	if now.Sub(f.last) > failureMemory {
		f.count = 0 // a quiet hour: the owner mistyping again starts afresh
	}
	f.count++
	f.last = now
	if f.count >= limit {
		f.until = now.Add(min(lockoutFor<<min(f.count-limit, 10), maxLockout))
		a.lockouts.Add(1)
	}
}

// evictOldestFailure makes room in the full table: it forgets the entry
// whose last failure is oldest, sparing lockouts in force while any other
// entry is left. It never forgets an account's wrong codes: only someone
// who gave the account's password, or holds a login of it, makes such an
// entry, so there are at most as many as accounts, and forgetting one let
// a flood of failed sign-ins to made-up accounts free a code guesser from
// the pause. It reads the whole table, only when the table is full.
func (a *Authenticator) evictOldestFailure(now time.Time) {
	var oldest string
	var at time.Time
	var inForce bool
	for k, f := range a.failures {
		if strings.HasPrefix(k, codesPrefix) {
			continue
		}
		locked := now.Before(f.until)
		if oldest == "" || (inForce && !locked) || (locked == inForce && f.last.Before(at)) {
			oldest, at, inForce = k, f.last, locked
		}
	}
	if oldest != "" {
		delete(a.failures, oldest)
	}
}

// Logout ends the console login p came with, if any.
func (a *Authenticator) Logout(ctx context.Context, p *Principal) error {
	if p.Login == nil {
		return nil
	}
	a.cfg.Logger.InfoContext(ctx, "logout", "user", p.User.Username)
	return a.cfg.Store.DeleteLogin(ctx, p.Login.TokenHash)
}

// Authenticate finds who r acts as: an `Authorization: Bearer` API key or
// login token, or the login cookie. Disabled accounts, revoked keys and
// logins past their idle or absolute timeout are refused with
// ErrUnauthenticated; when the database cannot be read the error is
// ErrUnavailable instead, so that the caller answers that the broker has
// a problem rather than that the credentials are wrong.
func (a *Authenticator) Authenticate(r *http.Request) (*Principal, error) {
	ctx := r.Context()
	now := a.cfg.Now()
	if h := r.Header.Get("Authorization"); h != "" {
		// The scheme's name is case-insensitive (RFC 9110).
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return nil, ErrUnauthenticated
		}
		if strings.HasPrefix(token, apiKeyPrefix) {
			key, err := a.cfg.Store.APIKeyByHash(ctx, HashToken(token))
			if err != nil {
				return nil, a.lookupFailed(ctx, err)
			}
			if !key.ExpiresAt.IsZero() && !now.Before(key.ExpiresAt) {
				return nil, ErrKeyExpired
			}
			p, err := a.principal(ctx, key.UserID)
			if err != nil {
				return nil, err
			}
			// Its last use is written once a minute at most, not at each
			// call of a ticket system that polls.
			if now.Sub(key.LastUsedAt) >= keyUseEvery {
				a.touchFailed(ctx, a.cfg.Store.TouchAPIKey(ctx, key.ID, now))
			}
			p.KeyID, p.Scopes, p.KeyExpiresAt = key.ID, key.Scopes, key.ExpiresAt
			return p, nil
		}
		return a.loginByToken(ctx, token, now)
	}
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil, ErrUnauthenticated
	}
	p, err := a.loginByToken(ctx, c.Value, now)
	if err != nil {
		return nil, err
	}
	p.CSRF, p.Cookie = p.Login.CSRF, true
	return p, nil
}

// loginByToken is who the console login with token acts as.
func (a *Authenticator) loginByToken(ctx context.Context, token string, now time.Time) (*Principal, error) {
	login, err := a.cfg.Store.LoginByToken(ctx, HashToken(token), now, now.Add(-a.cfg.IdleTimeout))
	if err != nil {
		return nil, a.lookupFailed(ctx, err)
	}
	p, err := a.loginPrincipal(ctx, login)
	if err != nil {
		return nil, err
	}
	a.touchFailed(ctx, a.cfg.Store.TouchLogin(ctx, login, now))
	return p, nil
}

// lookupFailed turns the error of looking up a login, key or account into
// ErrUnauthenticated when there is no such thing, and into ErrUnavailable,
// logged, when the database failed: a valid key must not look revoked
// because the broker has a problem.
func (a *Authenticator) lookupFailed(ctx context.Context, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnauthenticated
	}
	a.logStoreTrouble(ctx, &a.lookupWarned, slog.LevelError, "cannot check logins and API keys: the database failed", err)
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// touchFailed logs, once a while, that the last use of a login or key
// could not be recorded (a full disk): the login or key still works, as
// only this bookkeeping is lost.
func (a *Authenticator) touchFailed(ctx context.Context, err error) {
	if err != nil {
		a.logStoreTrouble(ctx, &a.touchWarned, slog.LevelWarn, "cannot record when logins and API keys were last used; they still work", err)
	}
}

func (a *Authenticator) logStoreTrouble(ctx context.Context, last *time.Time, level slog.Level, msg string, err error) {
	now := a.cfg.Now()
	a.mu.Lock()
	quiet := !last.IsZero() && now.Sub(*last) < storeTroubleEvery
	if !quiet {
		*last = now
	}
	a.mu.Unlock()
	if !quiet {
		a.cfg.Logger.Log(ctx, level, msg, "err", err)
	}
}

// loginPrincipal is who a console login acts as. Whether it must first
// enrol in TOTP follows the policy as it is now, so that requiring TOTP
// for a role restricts that role's open logins at once.
func (a *Authenticator) loginPrincipal(ctx context.Context, login *store.Login) (*Principal, error) {
	p, err := a.principal(ctx, login.UserID)
	if err != nil {
		return nil, err
	}
	p.Login = login
	if !p.User.TOTPEnabled {
		required, err := a.TOTPRequiredRoles(ctx)
		if err != nil {
			return nil, a.lookupFailed(ctx, err)
		}
		p.MustEnrol = slices.Contains(required, p.User.Role)
	}
	return p, nil
}

func (a *Authenticator) principal(ctx context.Context, userID int64) (*Principal, error) {
	u, err := a.cfg.Store.UserByID(ctx, userID)
	if err != nil {
		return nil, a.lookupFailed(ctx, err)
	}
	if u.Disabled {
		return nil, ErrUnauthenticated
	}
	return &Principal{User: u}, nil
}

// settingTOTPRoles names the roles that must use TOTP.
const settingTOTPRoles = "totp_required_roles"

// TOTPRequiredRoles returns the roles whose accounts must use TOTP.
func (a *Authenticator) TOTPRequiredRoles(ctx context.Context) ([]string, error) {
	v, err := a.cfg.Store.Setting(ctx, settingTOTPRoles)
	if err != nil || v == "" {
		return []string{}, err
	}
	return strings.Split(v, ","), nil
}

// SetTOTPRequiredRoles makes TOTP mandatory for roles; logins of those
// roles without TOTP may from then on only enrol.
func (a *Authenticator) SetTOTPRequiredRoles(ctx context.Context, roles []string) error {
	for _, r := range roles {
		if !ValidRole(r) {
			return fmt.Errorf("unknown role %q", r)
		}
	}
	return a.cfg.Store.SetSetting(ctx, settingTOTPRoles, strings.Join(roles, ","))
}

// BeginTOTP starts an enrolment, given u's password from source: a new
// secret is stored, not yet in force, and returned with its otpauth://
// URI. Without the password, whoever held a stolen login could put their
// own authenticator on the account and lock its owner out; only the
// answer to this request shows the secret that ConfirmTOTP then needs.
func (a *Authenticator) BeginTOTP(ctx context.Context, u *store.User, source, password string) (secret, uri string, err error) {
	if u.TOTPEnabled {
		return "", "", ErrTOTPEnabled
	}
	if err := a.checkCurrentPassword(ctx, u, source, password, "set up two-factor authentication"); err != nil {
		return "", "", err
	}
	u.TOTPSecret = NewTOTPSecret()
	if err := a.cfg.Store.SetTOTP(ctx, u.ID, u.TOTPSecret, u.TOTPEnabled, u.TOTPLastStep); err != nil {
		return "", "", err
	}
	return u.TOTPSecret, TOTPURI(a.cfg.Issuer, u.Username, u.TOTPSecret), nil
}

// ConfirmTOTP puts the enrolment of p's account in force once the user
// shows a code, and returns the account's recovery codes, to be shown
// once. It ends every other login of the account: those were
// opened with the password alone, and must not pass for logins that gave
// a code (where the role requires TOTP they may only enrol, and someone
// who learnt the password would otherwise wait for the owner to enrol;
// where it does not yet, they would stay full logins once it does). The
// login that confirmed stays. Wrong codes
// count towards the account's pause on codes, as at login: whoever holds a
// login of an account whose owner began an enrolment and left it could
// otherwise guess one of its codes within minutes and turn on a second
// factor its owner may no longer have.
func (a *Authenticator) ConfirmTOTP(ctx context.Context, p *Principal, code string) (recoveryCodes []string, err error) {
	u := p.User
	if u.TOTPEnabled {
		return nil, ErrTOTPEnabled
	}
	if u.TOTPSecret == "" {
		return nil, ErrBadTOTP // no enrolment begun: there is nothing to guess
	}
	now := a.cfg.Now()
	codes := codeFailureKey(u.Username)
	if err := a.lockedOut(codes, now); err != nil {
		return nil, err
	}
	step, ok := checkTOTP(u.TOTPSecret, code, now)
	if !ok {
		a.recordFailureAfter(codes, now, maxCodeFailures)
		a.cfg.Logger.WarnContext(ctx, "wrong two-factor code to confirm the enrolment", "user", u.Username)
		return nil, ErrBadTOTP
	}
	recoveryCodes, hashes := newRecoveryCodes(u.ID)
	if err := a.cfg.Store.EnableTOTP(ctx, u.ID, step, hashes); err != nil {
		return nil, err
	}
	u.TOTPEnabled, u.TOTPLastStep = true, step
	a.mu.Lock()
	delete(a.failures, codes)
	a.mu.Unlock()
	// Every other login of the account was opened with the password
	// alone: none goes on as if it had given a code (where the role
	// requires one, it could only enrol; where the role comes to require
	// it later, it would pass for a login that had).
	if err := a.cfg.Store.DeleteOtherLogins(ctx, u.ID, p.LoginTokenHash()); err != nil {
		return nil, err
	}
	a.cfg.Logger.InfoContext(ctx, "two-factor enrolled", "user", u.Username)
	return recoveryCodes, nil
}

// DisableTOTP turns TOTP off for u, given its password and a current
// code from source, unless u's role requires it. Wrong passwords and
// codes count towards the lockout as at login: whoever holds a stolen
// login must not guess their way past either.
func (a *Authenticator) DisableTOTP(ctx context.Context, u *store.User, source, password, code string) error {
	required, err := a.TOTPRequiredRoles(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(required, u.Role) {
		return ErrTOTPNeeded
	}
	if !u.TOTPEnabled {
		// Not a wrong code: there is nothing to turn off, and saying the
		// code is wrong would send the user looking for one.
		return ErrTOTPOff
	}
	if err := a.lockedOut(codeFailureKey(u.Username), a.cfg.Now()); err != nil {
		return err
	}
	if err := a.checkCurrentPassword(ctx, u, source, password, "turn two-factor off"); err != nil {
		return err
	}
	if err := a.checkOwnerCode(ctx, u, source, code, "turn two-factor off"); err != nil {
		return err
	}
	u.TOTPSecret, u.TOTPEnabled, u.TOTPLastStep = "", false, 0
	a.cfg.Logger.InfoContext(ctx, "two-factor turned off", "user", u.Username)
	return a.cfg.Store.SetTOTP(ctx, u.ID, u.TOTPSecret, u.TOTPEnabled, u.TOTPLastStep)
}

// checkCurrentPassword checks the password of u, sent from source to do
// what only the account's owner may (doing, for the log). A wrong one
// counts towards the lockout as at login, and is ErrBadCredentials: a
// stolen login must not become a way to guess the password.
func (a *Authenticator) checkCurrentPassword(ctx context.Context, u *store.User, source, password, doing string) error {
	now := a.cfg.Now()
	key := failureKey(u.Username, source)
	if err := a.lockedOut(key, now); err != nil {
		return err
	}
	ok, err := CheckPassword(u.PasswordHash, password)
	if err != nil {
		return err
	}
	if !ok {
		a.recordFailure(key, now)
		a.cfg.Logger.WarnContext(ctx, "wrong current password to "+doing, "user", u.Username, "source", source)
		return ErrBadCredentials
	}
	return nil
}

// CheckPasswordPolicy refuses passwords too short to resist guessing.
func CheckPasswordPolicy(password string) error {
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return fmt.Errorf("%w: use at least %d characters", ErrWeakPassword, MinPasswordLength)
	}
	if len(password) > 1024 {
		return fmt.Errorf("%w: use at most 1024 bytes", ErrWeakPassword)
	}
	return nil
}

// ChangePassword sets the password of p's account after checking the
// current one, sent from source, and ends every other login of the
// account: whoever knew the old password, or holds a login of another
// browser or `viewer login`, is out. The login that changed it stays.
// Wrong current passwords count towards the lockout as at login: a
// stolen login must not become a way to guess the password.
func (a *Authenticator) ChangePassword(ctx context.Context, p *Principal, source, current, next string) error {
	u := p.User
	if err := a.checkCurrentPassword(ctx, u, source, current, "change the password"); err != nil {
		return err
	}
	if err := CheckPasswordPolicy(next); err != nil {
		return err
	}
	hash, err := HashPassword(next)
	if err != nil {
		return err
	}
	// Only over the password just checked: one reset or changed meanwhile
	// (an admin resetting a stolen account) is not the current password
	// given, and must not be undone by it.
	if err := a.cfg.Store.SetPassword(ctx, u.ID, u.PasswordHash, hash); errors.Is(err, store.ErrCredentialsChanged) {
		a.cfg.Logger.WarnContext(ctx, "password change refused: the password changed while the current one was checked", "user", u.Username, "source", source)
		return ErrBadCredentials
	} else if err != nil {
		return err
	}
	u.PasswordHash = hash
	if err := a.cfg.Store.DeleteOtherLogins(ctx, u.ID, p.LoginTokenHash()); err != nil {
		return err
	}
	a.cfg.Logger.InfoContext(ctx, "password changed; other logins ended", "user", u.Username)
	return nil
}

// ResetUser gives u a new random password, which it returns, turns TOTP
// off, lifts any lockout and ends every login: for a user who forgot a
// password or lost their authenticator.
func (a *Authenticator) ResetUser(ctx context.Context, u *store.User) (string, error) {
	password := RandomToken(15)
	hash, err := HashPassword(password)
	if err != nil {
		return "", err
	}
	u.PasswordHash, u.TOTPSecret, u.TOTPEnabled, u.TOTPLastStep = hash, "", false, 0
	if err := a.cfg.Store.ResetCredentials(ctx, u.ID, hash); err != nil {
		return "", err
	}
	if err := a.cfg.Store.DeleteUserLogins(ctx, u.ID); err != nil {
		return "", err
	}
	a.mu.Lock()
	for k := range a.failures {
		if _, name, _ := strings.Cut(k, " "); name == u.Username {
			delete(a.failures, k)
		}
	}
	a.mu.Unlock()
	return password, nil
}

// UpdateAccount changes u's role and disabled flag, each only when given
// (not nil), keeping at least one active admin (ErrLastAdmin), also when
// admins change each other at the same moment; a disabled account's logins
// end at once. u is left as the account is now, and was is what it was
// just before the change: another admin may have changed it since u was
// read.
func (a *Authenticator) UpdateAccount(ctx context.Context, u *store.User, role *string, disabled *bool) (was store.RoleState, err error) {
	if role != nil && !ValidRole(*role) {
		return was, fmt.Errorf("unknown role %q", *role)
	}
	was, now, err := a.cfg.Store.SetUserRole(ctx, u.ID, role, disabled)
	if err != nil {
		return was, err
	}
	u.Role, u.Disabled = now.Role, now.Disabled
	if now.Disabled {
		return was, a.cfg.Store.DeleteUserLogins(ctx, u.ID)
	}
	return was, nil
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
