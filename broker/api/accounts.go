package api

import (
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/internal/limit"
)

// registerAccounts adds the endpoints for accounts, API keys, settings and
// one's own password and two-factor authentication.
func (a *API) registerAccounts(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/me/password", a.authed("", a.changePassword))
	mux.HandleFunc("POST /api/v1/me/totp", a.authedEnrol(a.beginTOTP))
	mux.HandleFunc("POST /api/v1/me/totp/confirm", a.authedEnrol(a.confirmTOTP))
	mux.HandleFunc("DELETE /api/v1/me/totp", a.authed("", a.disableTOTP))
	mux.HandleFunc("POST /api/v1/me/totp/recovery-codes", a.authed("", a.newRecoveryCodes))
	mux.HandleFunc("GET /api/v1/users", a.authed(auth.ScopeUsersAdmin, a.listUsers))
	mux.HandleFunc("POST /api/v1/users", a.authed(auth.ScopeUsersAdmin, a.createUser))
	mux.HandleFunc("PATCH /api/v1/users/{username}", a.authed(auth.ScopeUsersAdmin, a.updateUser))
	mux.HandleFunc("POST /api/v1/users/{username}/reset", a.authed(auth.ScopeUsersAdmin, a.resetUser))
	mux.HandleFunc("GET /api/v1/keys", a.authed(auth.ScopeUsersAdmin, a.listKeys))
	mux.HandleFunc("POST /api/v1/keys", a.authed(auth.ScopeUsersAdmin, a.createKey))
	mux.HandleFunc("DELETE /api/v1/keys/{id}", a.authed(auth.ScopeUsersAdmin, a.revokeKey))
	mux.HandleFunc("GET /api/v1/settings", a.authed(auth.ScopeUsersAdmin, a.getSettings))
	mux.HandleFunc("PUT /api/v1/settings", a.authed(auth.ScopeUsersAdmin, a.putSettings))
	mux.HandleFunc("GET /api/v1/audit/codes", a.authed(auth.ScopeUsersAdmin, a.codeAttempts))
}

type accountJSON struct {
	Username    string    `json:"username"`
	Role        string    `json:"role"`
	Disabled    bool      `json:"disabled"`
	TOTPEnabled bool      `json:"totp_enabled"`
	CreatedAt   time.Time `json:"created_at"`
	// Password is in the answer to creation and reset only.
	Password string `json:"password,omitempty"`
}

func toAccount(u *store.User) accountJSON {
	return accountJSON{Username: u.Username, Role: u.Role, Disabled: u.Disabled, TOTPEnabled: u.TOTPEnabled, CreatedAt: u.CreatedAt}
}

func (a *API) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.log.ErrorContext(r.Context(), what, "err", err)
	writeError(w, http.StatusInternalServerError, "internal_error", "The broker could not "+what+"; try again.")
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	if !takesNoQuery(w, r) {
		return
	}
	list, err := a.cfg.Store.ListUsers(r.Context())
	if err != nil {
		a.internal(w, r, "list accounts", err)
		return
	}
	out := struct {
		Users []accountJSON `json:"users"`
	}{Users: []accountJSON{}}
	for _, u := range list {
		out.Users = append(out.Users, toAccount(u))
	}
	writeJSON(w, http.StatusOK, out)
}

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,` + strconv.Itoa(auth.MaxUsernameLength-1) + `}$`)

func (a *API) createUser(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req struct {
		Username string `json:"username"`
		Role     string `json:"role"`
		// Password is optional: without one the broker makes one up and
		// shows it once.
		Password string `json:"password"`
	}
	if !decode(w, r, &req) {
		return
	}
	var errs []fieldError
	if !usernamePattern.MatchString(req.Username) {
		errs = append(errs, fieldError{"username", "invalid_username", "username must be 2 to 32 lower-case letters, digits, dots, dashes or underscores, starting with a letter or digit."})
	}
	if !auth.ValidRole(req.Role) {
		errs = append(errs, fieldError{"role", "invalid_role", "role must be technician, supervisor or admin."})
	}
	generated := req.Password == ""
	if generated {
		req.Password = auth.RandomToken(15)
	} else if err := auth.CheckPasswordPolicy(req.Password); err != nil {
		errs = append(errs, fieldError{"password", "weak_password", "password must have at least 12 characters (at most 1024 bytes)."})
	}
	if len(errs) > 0 {
		writeFieldErrors(w, errs)
		return
	}
	if !a.mayGrantRole(w, r, p, req.Role, "create an account with the "+req.Role+" role") {
		return
	}
	u, err := a.cfg.Auth.CreateUser(r.Context(), req.Username, req.Password, req.Role)
	if errors.Is(err, store.ErrConflict) {
		writeError(w, http.StatusConflict, "username_taken", "An account with that username exists already.")
		return
	}
	if err != nil {
		a.internal(w, r, "create the account", err)
		return
	}
	a.log.InfoContext(r.Context(), "account created", "user", u.Username, "role", u.Role, by(p))
	out := toAccount(u)
	if generated {
		out.Password = req.Password
	}
	writeJSON(w, http.StatusCreated, out)
}

// mayGrantRole refuses with 403, saying why, a request that would let p
// sign in as an account of role holding a scope p lacks. A key never makes
// an account that can do more than itself, as it never makes such a key
// (see createKey): a key with users:admin alone must not make an admin,
// promote one, or reset one and sign in with every scope. A console login
// acts with its role's scopes, and only admins manage accounts, so this
// refuses API keys only. doing says what the request would do.
func (a *API) mayGrantRole(w http.ResponseWriter, r *http.Request, p *auth.Principal, role, doing string) bool {
	for _, sc := range auth.AllScopes {
		if auth.RoleAllows(role, sc) && !p.Can(sc) {
			a.log.WarnContext(r.Context(), "account change refused: the API key lacks a scope of the role", "doing", doing, "scope", sc, by(p))
			writeError(w, http.StatusForbidden, "forbidden", "The API key you are using lacks the "+sc+" scope, which the "+role+
				" role holds, so it cannot "+doing+".")
			return false
		}
	}
	return true
}

// by names who changed accounts, keys or settings, for the log: the
// account, and the API key when one was used. An integration's key acts as
// an admin's account, and its changes must not read as that admin's own.
func by(p *auth.Principal) slog.Attr {
	if p.KeyID != "" {
		return slog.String("by", p.User.Username+" (API key "+p.KeyID+")")
	}
	return slog.String("by", p.User.Username)
}

func (a *API) account(w http.ResponseWriter, r *http.Request) (*store.User, bool) {
	u, err := a.cfg.Store.UserByName(r.Context(), r.PathValue("username"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "No such account.")
		return nil, false
	}
	if err != nil {
		a.internal(w, r, "find the account", err)
		return nil, false
	}
	return u, true
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req struct {
		Role     *string `json:"role"`
		Disabled *bool   `json:"disabled"`
	}
	if !decode(w, r, &req) {
		return
	}
	u, ok := a.account(w, r)
	if !ok {
		return
	}
	if req.Role != nil {
		if !auth.ValidRole(*req.Role) {
			writeFieldErrors(w, []fieldError{{"role", "invalid_role", "role must be technician, supervisor or admin."}})
			return
		}
		if *req.Role != u.Role && !a.mayGrantRole(w, r, p, *req.Role, "give an account the "+*req.Role+" role") {
			return
		}
	}
	// Only the fields in the request change: two admins changing one
	// account at once, one its role and one its state, both have their way.
	was, err := a.cfg.Auth.UpdateAccount(r.Context(), u, req.Role, req.Disabled)
	if errors.Is(err, auth.ErrLastAdmin) {
		writeError(w, http.StatusConflict, "last_admin", "This is the last active admin: make another admin first.")
		return
	}
	if err != nil {
		a.internal(w, r, "update the account", err)
		return
	}
	a.log.InfoContext(r.Context(), "account updated", "user", u.Username, "role", u.Role, "disabled", u.Disabled, by(p))
	// What the user allowed was allowed to the account as it was: its live
	// connections end, and anything it may still do is asked afresh.
	switch {
	case u.Disabled && !was.Disabled:
		a.cfg.Hub.DisconnectUser(u.ID, "An administrator disabled your account.")
		// A user who joins with the code it gave them would wait for
		// nobody.
		if err := a.cfg.Hub.EndWaitingOf(r.Context(), p.User, u.ID); err != nil {
			a.log.ErrorContext(r.Context(), "end the sessions of a disabled account", "user", u.Username, "err", err)
		}
	case u.Role != was.Role:
		a.cfg.Hub.DisconnectUser(u.ID, "An administrator changed your role; connect again.")
	}
	writeJSON(w, http.StatusOK, toAccount(u))
}

func (a *API) resetUser(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	u, ok := a.account(w, r)
	if !ok {
		return
	}
	// Whoever resets an account learns its new password and can sign in
	// as it: that is granting its role.
	if !a.mayGrantRole(w, r, p, u.Role, "reset an account with the "+u.Role+" role, for its new password would sign in with that scope") {
		return
	}
	password, err := a.cfg.Auth.ResetUser(r.Context(), u)
	if err != nil {
		a.internal(w, r, "reset the account", err)
		return
	}
	a.log.InfoContext(r.Context(), "account reset", "user", u.Username, by(p))
	a.cfg.Hub.DisconnectUser(u.ID, "An administrator reset your account; sign in again.")
	out := toAccount(u)
	out.Password = password
	writeJSON(w, http.StatusOK, out)
}

type keyJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Username   string     `json:"username"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	// ExpiresAt is the key's last moment (null: until revoked); Expired
	// says it has passed, by the broker's clock.
	ExpiresAt *time.Time `json:"expires_at"`
	Expired   bool       `json:"expired"`
	// AccountDisabled: the key's account is disabled, and the key refused
	// until it is enabled again. Dormant are its scopes the account's role
	// no longer holds (an admin's key after they were made a technician):
	// refused, until the role holds them again.
	AccountDisabled bool     `json:"account_disabled"`
	Dormant         []string `json:"dormant_scopes"`
	// Key is in the answer to creation only.
	Key string `json:"key,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toKey(k *store.APIKey, now time.Time) keyJSON {
	scopes := k.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	dormant := []string{}
	for _, s := range scopes {
		if !auth.RoleAllows(k.UserRole, s) {
			dormant = append(dormant, s)
		}
	}
	return keyJSON{ID: k.ID, Name: k.Name, Username: k.Username, Scopes: scopes, CreatedAt: k.CreatedAt,
		LastUsedAt: optTime(k.LastUsedAt), RevokedAt: optTime(k.RevokedAt), ExpiresAt: optTime(k.ExpiresAt),
		Expired: !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt), AccountDisabled: k.UserDisabled, Dormant: dormant}
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	if !takesNoQuery(w, r) {
		return
	}
	list, err := a.cfg.Store.ListAPIKeys(r.Context())
	if err != nil {
		a.internal(w, r, "list API keys", err)
		return
	}
	out := struct {
		Keys []keyJSON `json:"keys"`
	}{Keys: []keyJSON{}}
	for _, k := range list {
		out.Keys = append(out.Keys, toKey(k, a.cfg.Now()))
	}
	writeJSON(w, http.StatusOK, out)
}

// maxKeyLife bounds an API key's expiry: a date further off is more likely
// a mistake (a year typed wrong) than a wish.
const maxKeyLife = 5 * 365 * 24 * time.Hour

func (a *API) createKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
		// Username is the account the key acts as (default: the caller).
		Username string `json:"username"`
		// ExpiresAt is when the key stops working, RFC 3339 (default:
		// never, until revoked).
		ExpiresAt string `json:"expires_at"`
	}
	if !decode(w, r, &req) {
		return
	}
	var errs []fieldError
	switch msg := textProblem("name", req.Name, 100); {
	case req.Name == "":
		errs = append(errs, fieldError{"name", "invalid_name", "name must say what the key is for, in at most 100 bytes."})
	case msg != "":
		errs = append(errs, fieldError{"name", "invalid_name", msg})
	}
	owner := p.User
	if req.Username != "" && req.Username != p.User.Username {
		u, err := a.cfg.Store.UserByName(r.Context(), req.Username)
		if err != nil || u.Disabled {
			errs = append(errs, fieldError{"username", "invalid_username", "username must name an active account."})
		} else {
			owner = u
		}
	}
	for _, sc := range req.Scopes {
		if !slices.Contains(auth.AllScopes, sc) || !auth.RoleAllows(owner.Role, sc) {
			errs = append(errs, fieldError{"scopes", "invalid_scopes", "scopes must be ones the key's account holds; " + strconv.Quote(sc) + " is not."})
			break
		}
	}
	if len(req.Scopes) == 0 {
		errs = append(errs, fieldError{"scopes", "invalid_scopes", "scopes must name at least one scope."})
	}
	var expires time.Time
	if req.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		now := a.cfg.Now()
		switch {
		case err != nil:
			errs = append(errs, fieldError{"expires_at", "invalid_expiry", "expires_at must be a time in RFC 3339, e.g. 2027-01-31T00:00:00Z."})
		case !t.After(now):
			errs = append(errs, fieldError{"expires_at", "invalid_expiry", "expires_at must be in the future."})
		case t.After(now.Add(maxKeyLife)):
			errs = append(errs, fieldError{"expires_at", "invalid_expiry", "expires_at must be within five years; leave it out for a key that works until revoked."})
		default:
			expires = t.UTC()
		}
	}
	if len(errs) > 0 {
		writeFieldErrors(w, errs)
		return
	}
	// A key never makes a key that can do more than itself: a key with
	// users:admin alone must not mint one with every scope, for its own
	// account or another admin's. A console login acts with its role's
	// scopes.
	for _, sc := range req.Scopes {
		if !p.Can(sc) {
			writeError(w, http.StatusForbidden, "forbidden", "The API key you are using lacks the "+sc+" scope, so it cannot give that scope to a new key.")
			return
		}
	}
	k, key, err := a.cfg.Auth.CreateAPIKey(r.Context(), owner, req.Name, req.Scopes, expires)
	if errors.Is(err, auth.ErrBadScopes) {
		writeFieldErrors(w, []fieldError{{"scopes", "invalid_scopes", "scopes must be distinct and ones the key's account holds."}})
		return
	}
	if err != nil {
		a.internal(w, r, "create the API key", err)
		return
	}
	a.log.InfoContext(r.Context(), "API key created", "key", k.ID, "user", owner.Username, "scopes", strings.Join(req.Scopes, ","), "expires", optTime(expires), by(p))
	out := toKey(k, a.cfg.Now())
	out.Key = key
	writeJSON(w, http.StatusCreated, out)
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	k, err := a.cfg.Store.RevokeAPIKey(r.Context(), r.PathValue("id"), a.cfg.Now())
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "No such API key.")
		return
	}
	if err != nil {
		a.internal(w, r, "revoke the API key", err)
		return
	}
	a.log.InfoContext(r.Context(), "API key revoked", "key", k.ID, by(p))
	a.cfg.Hub.DisconnectKey(k.ID, "The API key you connected with was revoked.")
	writeJSON(w, http.StatusOK, toKey(k, a.cfg.Now()))
}

type settingsJSON struct {
	// TOTPRequiredRoles: accounts of these roles must use two-factor
	// authentication.
	TOTPRequiredRoles []string `json:"totp_required_roles"`
}

func (a *API) getSettings(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	roles, err := a.cfg.Auth.TOTPRequiredRoles(r.Context())
	if err != nil {
		a.internal(w, r, "read the settings", err)
		return
	}
	writeJSON(w, http.StatusOK, settingsJSON{TOTPRequiredRoles: roles})
}

func (a *API) putSettings(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req struct {
		TOTPRequiredRoles []string `json:"totp_required_roles"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.TOTPRequiredRoles == nil {
		writeFieldErrors(w, []fieldError{{"totp_required_roles", "invalid_roles", "totp_required_roles must be a list of roles (possibly empty)."}})
		return
	}
	for i, role := range req.TOTPRequiredRoles {
		if !auth.ValidRole(role) || slices.Contains(req.TOTPRequiredRoles[:i], role) {
			writeFieldErrors(w, []fieldError{{"totp_required_roles", "invalid_roles", "totp_required_roles must list technician, supervisor or admin, each once."}})
			return
		}
	}
	if err := a.cfg.Auth.SetTOTPRequiredRoles(r.Context(), req.TOTPRequiredRoles); err != nil {
		a.internal(w, r, "save the settings", err)
		return
	}
	a.log.InfoContext(r.Context(), "settings changed", "totp_required_roles", req.TOTPRequiredRoles, by(p))
	// A login of a role now required to use two-factor, on an account
	// without it, may only enrol from now on: its live session
	// connections end too, as its REST calls are refused.
	users, err := a.cfg.Store.ListUsers(r.Context())
	if err != nil {
		a.log.WarnContext(r.Context(), "list accounts to close the connections of those without two-factor", "err", err)
	}
	var unenrolled []int64
	for _, u := range users {
		if !u.TOTPEnabled && slices.Contains(req.TOTPRequiredRoles, u.Role) {
			unenrolled = append(unenrolled, u.ID)
		}
	}
	if len(unenrolled) > 0 {
		a.cfg.Hub.DisconnectLoginsOf(unenrolled, "Your role now requires two-factor authentication: set it up in the console (Account security), then join again.")
	}
	writeJSON(w, http.StatusOK, settingsJSON{TOTPRequiredRoles: req.TOTPRequiredRoles})
}

func (a *API) changePassword(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if !decode(w, r, &req) || !a.allowGuess(w, r) {
		return
	}
	err := a.cfg.Auth.ChangePassword(r.Context(), p, limit.Source(r), req.Current, req.New)
	switch {
	case writeLockout(w, err):
	case errors.Is(err, auth.ErrBadCredentials):
		writeFieldErrors(w, []fieldError{{"current_password", "bad_credentials", "The current password is wrong."}})
	case errors.Is(err, auth.ErrWeakPassword):
		writeFieldErrors(w, []fieldError{{"new_password", "weak_password", "The new password must have at least 12 characters (at most 1024 bytes)."}})
	case err != nil:
		a.internal(w, r, "change the password", err)
	default:
		// The other logins ended; so do their live connections.
		a.cfg.Hub.DisconnectOtherLogins(p.User.ID, p.LoginTokenHash(), "Your password was changed; sign in again with the new one.")
		w.WriteHeader(http.StatusNoContent)
	}
}

// wrongPassword is the answer to a wrong password given to change one's
// two-factor authentication.
var wrongPassword = fieldError{"password", "bad_credentials", "The password is wrong. Enter the password you sign in with."}

// missingPassword is the answer when it was left out: that is no guess,
// and does not count towards the lockout.
func missingPassword(doing string) fieldError {
	return fieldError{"password", "password_required", "Enter your password to " + doing + "."}
}

func (a *API) beginTOTP(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	if p.KeyID != "" {
		writeError(w, http.StatusForbidden, "forbidden", "API keys cannot enrol in two-factor authentication.")
		return
	}
	var req struct {
		Password string `json:"password"`
	}
	if !decodeOptional(w, r, &req) {
		return
	}
	if req.Password == "" {
		writeFieldErrors(w, []fieldError{missingPassword("set up two-factor authentication")})
		return
	}
	if !a.allowGuess(w, r) {
		return
	}
	secret, uri, err := a.cfg.Auth.BeginTOTP(r.Context(), p.User, limit.Source(r), req.Password)
	switch {
	case errors.Is(err, auth.ErrTOTPEnabled):
		writeError(w, http.StatusConflict, "totp_enabled", "Two-factor authentication is already on; turn it off first.")
	case writeLockout(w, err):
	case errors.Is(err, auth.ErrBadCredentials):
		writeFieldErrors(w, []fieldError{wrongPassword})
	case err != nil:
		a.internal(w, r, "start the enrolment", err)
	default:
		writeJSON(w, http.StatusOK, struct {
			Secret string `json:"secret"`
			URI    string `json:"otpauth_uri"`
		}{secret, uri})
	}
}

func (a *API) confirmTOTP(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req struct {
		Code string `json:"code"`
	}
	if !decode(w, r, &req) || !a.allowGuess(w, r) {
		return
	}
	codes, err := a.cfg.Auth.ConfirmTOTP(r.Context(), p, req.Code)
	switch {
	case errors.Is(err, auth.ErrTOTPEnabled):
		writeError(w, http.StatusConflict, "totp_enabled", "Two-factor authentication is already on.")
	case writeLockout(w, err):
	case errors.Is(err, auth.ErrBadTOTP):
		writeFieldErrors(w, []fieldError{{"code", "bad_totp", "That code is wrong; check the time on your phone and try the next one."}})
	case err != nil:
		a.internal(w, r, "confirm the enrolment", err)
	default:
		a.cfg.Hub.DisconnectOtherLogins(p.User.ID, p.LoginTokenHash(), "Two-factor authentication was turned on for your account: sign in again with a code.")
		writeJSON(w, http.StatusOK, struct {
			meJSON
			RecoveryCodes []string `json:"recovery_codes"`
		}{a.toMe(r.Context(), p.User, p.CSRF, false, p), codes})
	}
}

// newRecoveryCodes replaces the account's recovery codes, given its
// password and a code, and answers the new ones.
func (a *API) newRecoveryCodes(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	password, code, ok := a.ownerProof(w, r, "make new recovery codes")
	if !ok {
		return
	}
	codes, err := a.cfg.Auth.NewRecoveryCodes(r.Context(), p.User, limit.Source(r), password, code)
	switch {
	case proofRefused(w, err):
	case errors.Is(err, auth.ErrTOTPOff):
		writeError(w, http.StatusConflict, "totp_not_enabled", "Two-factor authentication is not on for this account: it has no recovery codes.")
	case err != nil:
		a.internal(w, r, "make new recovery codes", err)
	default:
		writeJSON(w, http.StatusOK, struct {
			RecoveryCodes []string `json:"recovery_codes"`
		}{codes})
	}
}

func (a *API) disableTOTP(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	password, code, ok := a.ownerProof(w, r, "turn off two-factor authentication")
	if !ok {
		return
	}
	err := a.cfg.Auth.DisableTOTP(r.Context(), p.User, limit.Source(r), password, code)
	switch {
	case proofRefused(w, err):
	case errors.Is(err, auth.ErrTOTPNeeded):
		writeError(w, http.StatusConflict, "totp_required_by_role", "Your role requires two-factor authentication; it cannot be turned off.")
	case errors.Is(err, auth.ErrTOTPOff):
		writeError(w, http.StatusConflict, "totp_not_enabled", "Two-factor authentication is not on for this account; there is nothing to turn off.")
	case err != nil:
		a.internal(w, r, "turn off two-factor authentication", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// ownerProof reads the account's password and a code (from the
// authenticator, or a recovery code), which a change to one's two-factor
// authentication takes; doing says what for, when the password is left
// out. It reports false once it has answered.
func (a *API) ownerProof(w http.ResponseWriter, r *http.Request, doing string) (password, code string, ok bool) {
	var req struct {
		Password string `json:"password"`
		Code     string `json:"code"`
	}
	if !decode(w, r, &req) {
		return "", "", false
	}
	if req.Password == "" {
		writeFieldErrors(w, []fieldError{missingPassword(doing)})
		return "", "", false
	}
	if !a.allowGuess(w, r) {
		return "", "", false
	}
	return req.Password, req.Code, true
}

// proofRefused answers err when the password or code given was refused,
// and reports whether it was.
func proofRefused(w http.ResponseWriter, err error) bool {
	switch {
	case writeLockout(w, err):
	case errors.Is(err, auth.ErrBadCredentials):
		writeFieldErrors(w, []fieldError{wrongPassword})
	case errors.Is(err, auth.ErrBadTOTP):
		writeFieldErrors(w, []fieldError{{"code", "bad_totp", "That code is wrong or was already used."}})
	default:
		return false
	}
	return true
}

type codeAttemptJSON struct {
	At      time.Time `json:"at"`
	Source  string    `json:"source"`
	Via     string    `json:"via"`
	Outcome string    `json:"outcome"`
	Session string    `json:"session,omitempty"`
	Actor   string    `json:"actor,omitempty"`
}

// codeAttempts lists the last day's audited code attempts.
func (a *API) codeAttempts(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	if !takesNoQuery(w, r) {
		return
	}
	list, err := a.cfg.Store.CodeAttempts(r.Context(), a.cfg.Now().Add(-24*time.Hour), 500)
	if err != nil {
		a.internal(w, r, "list code attempts", err)
		return
	}
	out := struct {
		Attempts []codeAttemptJSON `json:"attempts"`
	}{Attempts: []codeAttemptJSON{}}
	for _, c := range list {
		out.Attempts = append(out.Attempts, codeAttemptJSON{c.At, c.Source, c.Via, c.Outcome, c.Session, c.Actor})
	}
	writeJSON(w, http.StatusOK, out)
}
