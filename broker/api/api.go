// Package api serves the broker's REST API v1 (sessions for tickets,
// claiming a user's code, login, accounts, API keys, settings, webhooks),
// described by openapi.yaml, and its error format: JSON with a stable code,
// a human message and, for refused input, what is wrong with each field.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/record"
	"github.com/tether-support/tether/broker/signal"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/broker/webhook"
	"github.com/tether-support/tether/internal/limit"
	"github.com/tether-support/tether/internal/protocol"
)

// maxBody bounds every JSON request body.
const maxBody = 64 << 10

// Config configures the API.
type Config struct {
	Store  *store.Store
	Auth   *auth.Authenticator
	Hub    *signal.Hub
	Logger *slog.Logger
	Now    func() time.Time
	// PublicURL is the broker's address as users reach it, for join and
	// console links, e.g. https://support.example.com:8443.
	PublicURL string
	// NeedsDevCA: users' computers trust the broker only with its
	// development CA, so a host they run by hand needs -ca.
	NeedsDevCA bool
	// Recorder serves the session archives; nil when recording is off.
	Recorder *record.Recorder
}

// API is the REST handler set.
type API struct {
	cfg Config
	log *slog.Logger

	logins *limit.Keyed // login attempts by source address

	// creating serializes counting a technician's live codes with making
	// a new one, so that requests at once cannot pass the cap together.
	creating sync.Mutex
}

// maxLiveCodes caps the support codes a technician has waiting for users
// at once. Each live code is one more number a guesser can hit among the
// nine-digit codes, for up to a day; no one helps 100 users at once, and an
// integration that makes codes in a loop is stopped here.
const maxLiveCodes = 100

// Login attempts per source address: lockout protects each account; this
// slows down guessing across many accounts (password spraying).
const (
	loginsPerMinute = 20
	loginBurst      = 20
)

// allowLogin takes one login attempt from r's source, or says how long
// to wait for one.
func (a *API) allowLogin(r *http.Request) time.Duration {
	return a.logins.Take(limit.Source(r), a.cfg.Now())
}

// allowGuess takes one attempt at a password or two-factor code from r's
// source, out of the same budget as logins, or refuses r with 429.
func (a *API) allowGuess(w http.ResponseWriter, r *http.Request) bool {
	if wait := a.allowLogin(r); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		writeError(w, http.StatusTooManyRequests, "rate_limited", "Too many sign-in attempts from your network. Wait a moment and try again.")
		return false
	}
	return true
}

// writeLockout answers 429 when err says that too many wrong passwords or
// codes came from this source, and reports whether it did.
func writeLockout(w http.ResponseWriter, err error) bool {
	var locked *auth.LockoutError
	if !errors.As(err, &locked) {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(locked.RetryAfter.Seconds()+0.999)))
	writeError(w, http.StatusTooManyRequests, "locked_out", "Too many wrong passwords or codes. Wait a moment and try again.")
	return true
}

// New returns the API.
func New(cfg Config) (*API, error) {
	if cfg.Store == nil || cfg.Auth == nil || cfg.Hub == nil {
		return nil, errors.New("api: missing Store, Auth or Hub")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &API{cfg: cfg, log: cfg.Logger.With("component", "api"), logins: limit.New(loginsPerMinute, loginBurst)}, nil
}

// Register adds the API's routes to mux. Every route is described in
// openapi.yaml, which a test holds to the routes registered here.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/login", a.login)
	mux.HandleFunc("POST /api/v1/logout", a.logout)
	mux.HandleFunc("GET /api/v1/openapi.yaml", serveOpenAPI)
	mux.HandleFunc("GET /api/v1/me", a.authedEnrol(a.me))
	mux.HandleFunc("POST /api/v1/sessions", a.authed(auth.ScopeSessionsCreate, a.createSession))
	mux.HandleFunc("POST /api/v1/sessions/claim", a.authed(auth.ScopeSessionsCreate, a.claimCode))
	mux.HandleFunc("GET /api/v1/sessions", a.authed(auth.ScopeSessionsRead, a.listSessions))
	mux.HandleFunc("GET /api/v1/sessions/{id}", a.authed(auth.ScopeSessionsRead, a.getSession))
	mux.HandleFunc("POST /api/v1/sessions/{id}/end", a.authed(auth.ScopeSessionsWrite, a.endSession))
	mux.HandleFunc("GET /api/v1/sessions/{id}/events", a.authed(auth.ScopeSessionsRead, a.sessionEvents))
	mux.HandleFunc("POST /api/v1/sessions/{id}/invite", a.authed(auth.ScopeSessionsWrite, a.invite(false)))
	mux.HandleFunc("POST /api/v1/sessions/{id}/handover", a.authed(auth.ScopeSessionsWrite, a.invite(true)))
	a.registerAccounts(mux)
	a.registerRecordings(mux)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			list := strings.Join(allow, ", ")
			w.Header().Set("Allow", list)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.URL.Path+" does not take "+r.Method+"; it takes "+list+".")
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "No such API endpoint.")
	})
}

// allowedMethods lists the methods mux serves r's path with. This catch-all
// pattern matches every method, so it is chosen over ServeMux's own 405,
// and a client that sent the wrong method to a real endpoint would be told
// it does not exist.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if _, pattern := mux.Handler(&http.Request{Method: m, Host: r.Host, URL: r.URL}); pattern != "" && pattern != "/api/" {
			out = append(out, m)
		}
	}
	return out
}

type errorBody struct {
	Error struct {
		Code    string       `json:"code"`
		Message string       `json:"message"`
		Fields  []fieldError `json:"fields,omitempty"`
	} `json:"error"`
}

// fieldError is what is wrong with one field of a request.
type fieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeFieldErrors refuses a request field by field. With one problem its
// code is the error's code; with several it is invalid_request.
func writeFieldErrors(w http.ResponseWriter, errs []fieldError) {
	var body errorBody
	body.Error.Code, body.Error.Message, body.Error.Fields = "invalid_request", "Some fields are not valid.", errs
	if len(errs) == 1 {
		body.Error.Code, body.Error.Message = errs[0].Code, errs[0].Message
	}
	writeJSON(w, http.StatusBadRequest, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	if status == http.StatusUnauthorized {
		// Every 401 names the scheme that authenticates (RFC 9110 requires
		// it; HTTP clients and proxies rely on it).
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	var body errorBody
	body.Error.Code, body.Error.Message = code, message
	writeJSON(w, status, body)
}

// decode reads a bounded JSON body into v, refusing unknown fields and
// anything after the one JSON value. The whole body is read before any of
// it is used, so a request is refused as a whole (too large, trailing data)
// before it can act, never after its client stopped listening.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeBody(w, r, v, false)
}

// decodeOptional is decode for a request whose body may be left out: an
// empty body leaves v as it is however it was sent, without Content-Length
// or chunked with nothing in it, as some HTTP clients send every POST.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeBody(w, r, v, true)
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		// Media types are case-insensitive and may carry parameters
		// (charset); application/jsonfoo is not JSON.
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Send JSON with Content-Type: application/json.")
			return false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "The request body is larger than 64 KiB.")
		return false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", "The request body could not be read; send it again.")
		return false
	}
	if optional && len(body) == 0 {
		return true
	}
	if tok, err := json.NewDecoder(bytes.NewReader(body)).Token(); err == nil && tok == nil {
		// encoding/json reads null into an object as nothing at all, which
		// would run the request with every field left out.
		writeError(w, http.StatusBadRequest, "invalid_json", "The request body must be a JSON object, not null.")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeDecodeError(w, err, body, reflect.TypeOf(v))
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid_json", "The request body has more after its JSON object; send one JSON object and nothing else.")
		return false
	}
	return true
}

// writeDecodeError refuses a body that is not the JSON object a request
// takes, in words for people (never the Go types it was read into) and,
// where the problem is one field's, naming it in fields. The code stays
// invalid_json whatever the problem. body and t (what it was read into)
// say where in the request an unknown field sits.
func writeDecodeError(w http.ResponseWriter, err error, body []byte, t reflect.Type) {
	var out errorBody
	out.Error.Code = "invalid_json"
	var typeErr *json.UnmarshalTypeError
	unknown, isUnknown := strings.CutPrefix(err.Error(), "json: unknown field ")
	switch {
	case errors.Is(err, io.EOF):
		out.Error.Message = "The request body is empty; send a JSON object."
	case errors.As(err, &typeErr) && typeErr.Field == "":
		out.Error.Message = "The request body must be a JSON object, not " + jsonValueName(typeErr.Value) + "."
	case errors.As(err, &typeErr):
		out.Error.Message = fmt.Sprintf("%s has the wrong type: %s was sent where %s belongs.", typeErr.Field, jsonValueName(typeErr.Value), goTypeName(typeErr.Type))
		out.Error.Fields = []fieldError{{typeErr.Field, "invalid_type", out.Error.Message}}
	case isUnknown:
		name, _ := strconv.Unquote(unknown)
		name = unknownFieldPath(body, t, name)
		out.Error.Message = fmt.Sprintf("This request has no field %s; check its spelling against the API documentation.", strconv.Quote(name))
		out.Error.Fields = []fieldError{{name, "unknown_field", out.Error.Message}}
	default:
		out.Error.Message = "The request body is not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ") + "."
	}
	writeJSON(w, http.StatusBadRequest, out)
}

// unknownFieldPath finds where in body the field name sits that t does not
// take, as a path such as ticket.prio: encoding/json names only the field
// itself, and "no field prio" does not say which object it was sent in.
// Several such fields of that name give the first path in sorted order;
// none found (body unreadable) gives name as it is.
func unknownFieldPath(body []byte, t reflect.Type, name string) string {
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return name
	}
	var found []string
	var walk func(v any, t reflect.Type, path string)
	walk = func(v any, t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch v := v.(type) {
		case map[string]any:
			if t.Kind() != reflect.Struct {
				return
			}
			for key, value := range v {
				p := key
				if path != "" {
					p = path + "." + key
				}
				if f, ok := jsonField(t, key); ok {
					walk(value, f.Type, p)
				} else if key == name {
					found = append(found, p)
				}
			}
		case []any:
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				return
			}
			for i, value := range v {
				walk(value, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(doc, t, "")
	if len(found) == 0 {
		return name
	}
	return slices.Min(found)
}

// jsonField is the field of struct type t that JSON key key is read into,
// matched as encoding/json does (by tag or name, regardless of case).
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if f.IsExported() && name != "-" && strings.EqualFold(name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonValueName names a JSON value as encoding/json reports it ("string",
// "number 1.5", "array", ...).
func jsonValueName(v string) string {
	switch kind, literal, _ := strings.Cut(v, " "); kind {
	case "string":
		return "text"
	case "number":
		if literal != "" {
			return "the number " + literal
		}
		return "a number"
	case "array":
		return "a list"
	case "object":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a " + v
}

// goTypeName says what a request field holds, in JSON's words.
func goTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "text"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "an object"
}

// authed wraps a handler that needs a principal allowed scope ("" for
// any): it enforces origin and CSRF checks on cookie-authenticated changes,
// and keeps logins that must enrol in TOTP to enrolment.
func (a *API) authed(scope string, h func(http.ResponseWriter, *http.Request, *auth.Principal)) http.HandlerFunc {
	return a.guard(scope, false, h)
}

// Guard serves h to principals allowed scope, and answers as the API's
// own endpoints do otherwise (401, 403): for the broker's endpoints
// outside /api/v1, such as /metrics.
func (a *API) Guard(scope string, h http.Handler) http.HandlerFunc {
	return a.authed(scope, func(w http.ResponseWriter, r *http.Request, _ *auth.Principal) { h.ServeHTTP(w, r) })
}

// authedEnrol is authed for the endpoints a login that must first enrol
// in TOTP may use.
func (a *API) authedEnrol(h func(http.ResponseWriter, *http.Request, *auth.Principal)) http.HandlerFunc {
	return a.guard("", true, h)
}

func (a *API) guard(scope string, enrolOK bool, h func(http.ResponseWriter, *http.Request, *auth.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := a.cfg.Auth.Authenticate(r)
		if errors.Is(err, auth.ErrUnavailable) { // not the caller's fault: their key may be fine
			writeError(w, http.StatusServiceUnavailable, "unavailable", "The broker has a problem and cannot check logins right now; try again later, or tell its administrator.")
			return
		}
		if errors.Is(err, auth.ErrKeyExpired) {
			writeError(w, http.StatusUnauthorized, "key_expired", "This API key has expired: an administrator can create a new one.")
			return
		}
		if err != nil {
			writeError(w, http.StatusUnauthorized, "unauthorized", "Log in or send a valid API key.")
			return
		}
		if p.Cookie && !safeMethod(r) && !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "origin_refused", "This request came from another site and was refused.")
			return
		}
		if !auth.CheckCSRF(p, r) {
			writeError(w, http.StatusForbidden, "csrf_failed", "Missing or wrong CSRF token; reload the console.")
			return
		}
		if p.MustEnrol && !enrolOK {
			writeError(w, http.StatusForbidden, "totp_enrolment_required", "Your role requires two-factor authentication: set it up first.")
			return
		}
		if scope != "" && !p.Can(scope) {
			msg := "Your role does not allow this."
			if p.KeyID != "" && auth.RoleAllows(p.User.Role, scope) {
				msg = "This API key lacks the " + scope + " scope."
			}
			writeError(w, http.StatusForbidden, "forbidden", msg)
			return
		}
		h(w, r, p)
	}
}

func safeMethod(r *http.Request) bool {
	return r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
}

// sameOrigin accepts a request without Origin (not a browser's
// cross-site fetch, which always sends one) or whose Origin is this broker.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Scheme == "https" && strings.EqualFold(u.Host, r.Host)
}

type userJSON struct {
	Username    string `json:"username"`
	Role        string `json:"role"`
	TOTPEnabled bool   `json:"totp_enabled"`
}

type meJSON struct {
	User      userJSON `json:"user"`
	CSRFToken string   `json:"csrf_token,omitempty"`
	// MustEnrolTOTP: this login may only set up two-factor authentication.
	MustEnrolTOTP bool `json:"must_enrol_totp"`
	// TOTPRequired: the role requires two-factor authentication, which
	// the account therefore cannot turn off.
	TOTPRequired bool     `json:"totp_required"`
	Scopes       []string `json:"scopes"`
	// RecoveryCodesLeft: how many recovery codes the account has not
	// used, while two-factor authentication is on.
	RecoveryCodesLeft *int `json:"recovery_codes_left,omitempty"`
}

// toMe describes p, or a login of u that is not a request yet (p nil).
func (a *API) toMe(ctx context.Context, u *store.User, csrf string, mustEnrol bool, p *auth.Principal) meJSON {
	if p == nil {
		p = &auth.Principal{User: u}
	}
	scopes := []string{}
	for _, sc := range auth.AllScopes {
		if p.Can(sc) {
			scopes = append(scopes, sc)
		}
	}
	// Unknown, it reads as not required: the broker refuses turning it
	// off all the same.
	required, err := a.cfg.Auth.TOTPRequiredRoles(ctx)
	if err != nil {
		a.log.ErrorContext(ctx, "read the two-factor policy", "err", err)
	}
	me := meJSON{userJSON{u.Username, u.Role, u.TOTPEnabled}, csrf, mustEnrol, slices.Contains(required, u.Role), scopes, nil}
	if u.TOTPEnabled {
		if left, err := a.cfg.Auth.RecoveryCodesLeft(ctx, u); err != nil {
			a.log.ErrorContext(ctx, "count recovery codes", "err", err)
		} else {
			me.RecoveryCodesLeft = &left
		}
	}
	return me
}

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "origin_refused", "This request came from another site and was refused.")
		return
	}
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
		TOTP     string `json:"totp"`
	}
	if !decode(w, r, &req) {
		return
	}
	var errs []fieldError
	if req.Username == "" {
		errs = append(errs, fieldError{"username", "missing_credentials", "Enter a username."})
	}
	if req.Password == "" {
		errs = append(errs, fieldError{"password", "missing_credentials", "Enter a password."})
	}
	if len(errs) > 0 {
		writeFieldErrors(w, errs)
		return
	}
	if !a.allowGuess(w, r) {
		return
	}
	token, login, user, err := a.cfg.Auth.Login(r.Context(), limit.Source(r), req.Username, req.Password, req.TOTP)
	var locked *auth.LockoutError
	switch {
	case errors.As(err, &locked):
		w.Header().Set("Retry-After", strconv.Itoa(int(locked.RetryAfter.Seconds()+0.999)))
		writeError(w, http.StatusTooManyRequests, "locked_out", "Too many failed logins. Wait a moment and try again.")
		return
	case errors.Is(err, auth.ErrBadCredentials):
		writeError(w, http.StatusUnauthorized, "bad_credentials", "Wrong username or password.")
		return
	case errors.Is(err, auth.ErrTOTPRequired):
		writeError(w, http.StatusUnauthorized, "totp_required", "Enter the six-digit code from your authenticator app.")
		return
	case errors.Is(err, auth.ErrBadTOTP):
		writeError(w, http.StatusUnauthorized, "bad_totp", "That two-factor code is wrong or was already used.")
		return
	case errors.Is(err, auth.ErrDisabled):
		writeError(w, http.StatusForbidden, "account_disabled", "This account is disabled. Ask an admin.")
		return
	case err != nil:
		a.log.ErrorContext(r.Context(), "login", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "Login failed on the broker; try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: auth.CookieName, Value: token, Path: "/", Expires: login.ExpiresAt,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
	out := struct {
		meJSON
		Token string `json:"token,omitempty"`
	}{meJSON: a.toMe(r.Context(), user, login.CSRF, login.MustEnrol, nil)}
	// A browser's login lives in the HttpOnly cookie, out of reach of the
	// page's scripts; the same login as a bearer token in the answer would
	// be readable by them, and whatever got injected into the page could
	// carry it away and use it from elsewhere for hours. A browser sends
	// Origin with the sign-in; programs (the viewer CLI) send none and get
	// the token.
	if r.Header.Get("Origin") == "" {
		out.Token = token
	}
	writeJSON(w, http.StatusOK, out)
}

// logout ends the login the request came with and the live connections
// made with it. A cookie request must pass the origin and CSRF checks like
// any other change: another site must not sign a technician out, and a
// refused logout must not look like one that happened. Without a login
// there is nothing to end, and the cookie is cleared all the same.
func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	if p, err := a.cfg.Auth.Authenticate(r); err == nil {
		if p.Cookie && !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "origin_refused", "This request came from another site and was refused.")
			return
		}
		if !auth.CheckCSRF(p, r) {
			writeError(w, http.StatusForbidden, "csrf_failed", "Missing or wrong CSRF token; reload the console.")
			return
		}
		if err := a.cfg.Auth.Logout(r.Context(), p); err != nil {
			a.internal(w, r, "end the login", err)
			return
		}
		if p.Login != nil {
			a.cfg.Hub.DisconnectLogin(p.Login.TokenHash, "You signed out.")
		}
	}
	http.SetCookie(w, &http.Cookie{Name: auth.CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) me(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	writeJSON(w, http.StatusOK, a.toMe(r.Context(), p.User, p.CSRF, p.MustEnrol, p))
}

type ticketJSON struct {
	System string `json:"system,omitempty"`
	ID     string `json:"id"`
	URL    string `json:"url,omitempty"`
	Title  string `json:"title,omitempty"`
}

type sessionJSON struct {
	ID            string             `json:"id"`
	State         string             `json:"state"`
	Code          string             `json:"code,omitempty"`
	CodeExpiresAt *time.Time         `json:"code_expires_at,omitempty"`
	JoinURL       string             `json:"join_url,omitempty"`
	NeedsDevCA    *bool              `json:"needs_dev_ca,omitempty"`
	Ticket        *ticketJSON        `json:"ticket,omitempty"`
	Technician    string             `json:"technician"`
	InitiatedBy   string             `json:"initiated_by"`
	Host          *protocol.HostInfo `json:"host,omitempty"`
	CreatedAt     time.Time          `json:"created_at"`
	LiveAt        *time.Time         `json:"live_at,omitempty"`
	EndedAt       *time.Time         `json:"ended_at,omitempty"`
	EndReason     string             `json:"end_reason,omitempty"`
	EndCause      string             `json:"end_cause,omitempty"`
	Permissions   []string           `json:"permissions"`
	// Now is what the user allows the technicians connected now, while the
	// user's computer is in the session.
	Now        *consentJSON `json:"now,omitempty"`
	ConsoleURL string       `json:"console_url"`
}

type consentJSON struct {
	Allowed []string `json:"allowed"`
	Paused  bool     `json:"paused"`
}

// usernames caches user names by ID for one response.
type usernames map[int64]string

func (a *API) username(r *http.Request, names usernames, id int64) string {
	if n, ok := names[id]; ok {
		return n
	}
	var n string
	if u, err := a.cfg.Store.UserByID(r.Context(), id); err == nil {
		n = u.Username
	}
	names[id] = n
	return n
}

func (a *API) sessionJSON(r *http.Request, names usernames, s *store.Session) sessionJSON {
	out := sessionJSON{
		ID: s.ID, State: s.State, CreatedAt: s.CreatedAt, EndReason: s.EndReason, EndCause: s.EndCause, Permissions: s.Permissions,
		ConsoleURL: a.cfg.PublicURL + "/#/session/" + s.ID, Technician: a.username(r, names, s.CreatedBy), InitiatedBy: s.InitiatedBy,
	}
	if s.TicketID != "" {
		out.Ticket = &ticketJSON{System: s.TicketSystem, ID: s.TicketID, URL: s.TicketURL, Title: s.TicketTitle}
	}
	if s.State == store.StateWaiting && !s.CodeExpiresAt.IsZero() {
		exp := s.CodeExpiresAt // how long the user still has to join
		out.CodeExpiresAt = &exp
	}
	if s.HostJSON != "" {
		var h protocol.HostInfo
		if json.Unmarshal([]byte(s.HostJSON), &h) == nil {
			out.Host = &h
		}
	}
	if !s.LiveAt.IsZero() {
		t := s.LiveAt
		out.LiveAt = &t
	}
	if !s.EndedAt.IsZero() {
		t := s.EndedAt
		out.EndedAt = &t
	}
	if allowed, paused, ok := a.cfg.Hub.Allowed(s.ID); ok {
		out.Now = &consentJSON{Allowed: allowed, Paused: paused}
	}
	return out
}

// Limits on a ticket reference.
const (
	maxTicketID     = 128
	maxTicketSystem = 64
	maxTicketTitle  = 256
	maxTicketURL    = 2048
)

// textProblem says what is wrong with field's value s as one line of text
// of at most max bytes, or "" when nothing is. Lengths are in bytes, as
// the database and the messages to hosts count them, so a field of
// accented letters holds fewer characters than max.
func textProblem(field, s string, max int) string {
	switch {
	case !utf8.ValidString(s):
		return field + " must be UTF-8 text."
	case len(s) > max:
		return fmt.Sprintf("%s must be at most %d bytes; this one has %d (letters such as é take 2).", field, max, len(s))
	case strings.ContainsFunc(s, protocol.Unprintable):
		return field + " must be one line of plain text, without line breaks, tabs, other control characters or direction marks."
	}
	return ""
}

// checkNotes validates closing notes: text of at most 8 KiB that may run
// over several lines.
func checkNotes(notes string) []fieldError {
	var msg string
	switch {
	case len(notes) > webhook.MaxClosingNotes:
		msg = fmt.Sprintf("notes must be at most %d bytes (8 KiB); these have %d.", webhook.MaxClosingNotes, len(notes))
	case strings.ContainsFunc(notes, func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\r' && c != '\t' }):
		msg = "notes may hold line breaks and tabs, but no other control characters."
	default:
		return nil
	}
	return []fieldError{{"notes", "invalid_notes", msg}}
}

// checkTicket validates a ticket reference field by field. A ticket that
// is given must have an ID; required means one must be given.
func checkTicket(t *ticketJSON, required bool) (signal.Ticket, []fieldError) {
	var errs []fieldError
	if t == nil {
		if required {
			errs = append(errs, fieldError{"ticket.id", "ticket_required", "Attach a ticket: ticket.id is required."})
		}
		return signal.Ticket{}, errs
	}
	out := signal.Ticket{System: strings.TrimSpace(t.System), ID: strings.TrimSpace(t.ID), URL: strings.TrimSpace(t.URL), Title: strings.TrimSpace(t.Title)}
	if msg := textProblem("ticket.id", out.ID, maxTicketID); msg != "" {
		errs = append(errs, fieldError{"ticket.id", "invalid_ticket", msg})
	}
	switch {
	case out.ID == "" && required:
		errs = append(errs, fieldError{"ticket.id", "ticket_required", "Attach a ticket: ticket.id is required."})
	case out.ID == "":
		// A blank ID is a ticket system that lost its reference, not a
		// request for no ticket: the session would silently belong to none.
		errs = append(errs, fieldError{"ticket.id", "ticket_required", "ticket.id is blank. Give the ticket's reference, or leave ticket out to create a session without a ticket."})
	}
	if msg := textProblem("ticket.system", out.System, maxTicketSystem); msg != "" {
		errs = append(errs, fieldError{"ticket.system", "invalid_ticket_system", msg})
	} else if strings.ContainsAny(out.System, " /") {
		errs = append(errs, fieldError{"ticket.system", "invalid_ticket_system", "ticket.system must be a short name such as servicenow or jira, without spaces or slashes."})
	}
	if out.URL != "" {
		u, err := url.Parse(out.URL)
		if err != nil || len(out.URL) > maxTicketURL || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fieldError{"ticket.url", "invalid_ticket_url", "ticket.url must be an http or https link of at most 2048 bytes."})
		}
	}
	if msg := textProblem("ticket.title", out.Title, maxTicketTitle); msg != "" {
		errs = append(errs, fieldError{"ticket.title", "invalid_ticket_title", msg})
	}
	return out, errs
}

// checkPermissions validates the permissions a request asks for. An empty
// list is refused, not read as "the default": a ticket system that sends []
// means nothing at all, and would otherwise ask the user for view, control
// and clipboard. Leaving the field out asks for the default.
func checkPermissions(perms []string) []fieldError {
	if perms != nil && len(perms) == 0 {
		return []fieldError{{"permissions", "invalid_permissions", "permissions must ask for at least one of view, control, clipboard, files, shell; leave it out to ask for view, control and clipboard."}}
	}
	if err := protocol.CheckPermissions(perms); err != nil {
		return []fieldError{{"permissions", "invalid_permissions", "permissions must be a list of view, control, clipboard, files, shell without repeats."}}
	}
	return nil
}

func (a *API) createSession(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req struct {
		Ticket *ticketJSON `json:"ticket"`
		// Technician to assign the session to (default: the caller).
		Technician string `json:"technician"`
		// CodeTTLSeconds overrides the code lifetime (60 s to 24 h); left
		// out, the broker's default applies. 0 is refused like any other
		// value out of range, not read as the default.
		CodeTTLSeconds *int `json:"code_ttl_seconds"`
		// Permissions the technician will ask the user for.
		Permissions []string `json:"permissions"`
	}
	if !decodeOptional(w, r, &req) {
		return
	}
	ticket, errs := checkTicket(req.Ticket, false)
	var ttl time.Duration
	if req.CodeTTLSeconds != nil {
		if n := *req.CodeTTLSeconds; n < 60 || n > 86400 {
			errs = append(errs, fieldError{"code_ttl_seconds", "invalid_code_ttl", "code_ttl_seconds must be between 60 and 86400; leave it out for the broker's default."})
		}
		ttl = time.Duration(*req.CodeTTLSeconds) * time.Second
	}
	errs = append(errs, checkPermissions(req.Permissions)...)
	owner := p.User
	if req.Technician != "" && req.Technician != p.User.Username {
		u, err := a.cfg.Store.UserByName(r.Context(), req.Technician)
		switch {
		case p.User.Role != auth.RoleAdmin:
			errs = append(errs, fieldError{"technician", "cannot_assign", "Only admins and their integrations may assign a session to someone else."})
		case err != nil || u.Disabled || u.Role == auth.RoleSupervisor:
			errs = append(errs, fieldError{"technician", "invalid_technician", "technician must name an active technician or admin account."})
		default:
			owner = u
		}
	}
	if len(errs) > 0 {
		writeFieldErrors(w, errs)
		return
	}
	a.creating.Lock()
	defer a.creating.Unlock()
	live, err := a.liveCodes(r, owner)
	if err != nil {
		a.log.ErrorContext(r.Context(), "count live codes", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "The session could not be created; try again.")
		return
	}
	if live >= maxLiveCodes {
		writeError(w, http.StatusConflict, "too_many_codes", fmt.Sprintf("%s already has %d support codes waiting for users to join, the most a technician may have at once. End the sessions no one will join, or wait for their codes to expire.", owner.Username, maxLiveCodes))
		return
	}
	sess, code, err := a.cfg.Hub.CreateSession(r.Context(), p.User, owner, ticket, req.Permissions, ttl)
	if err != nil {
		a.log.ErrorContext(r.Context(), "create session", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "The session could not be created; try again.")
		return
	}
	out := a.sessionJSON(r, usernames{}, sess)
	out.Code = code
	out.JoinURL = a.cfg.PublicURL + "/join/" + code
	// Said either way: whoever shows the user a command to run needs to
	// know whether it takes -ca.
	needsCA := a.cfg.NeedsDevCA
	out.NeedsDevCA = &needsCA
	writeJSON(w, http.StatusCreated, out)
}

// liveCodes counts owner's sessions whose code still lets a user in. The
// hub ends a waiting session within a second of its code's expiry, so
// those left over do not hide live ones beyond the list's limit.
func (a *API) liveCodes(r *http.Request, owner *store.User) (int, error) {
	list, err := a.cfg.Store.ListSessions(r.Context(), store.SessionFilter{Technician: owner.ID, State: store.StateWaiting, Limit: 500})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range list {
		if s.CodeUsedAt.IsZero() && s.CodeExpiresAt.After(a.cfg.Now()) {
			n++
		}
	}
	return n, nil
}

// claimCode lets a technician take the computer of a user who started the
// host without a code and read out the one the broker showed them.
func (a *API) claimCode(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req struct {
		Code        string      `json:"code"`
		Ticket      *ticketJSON `json:"ticket"`
		Permissions []string    `json:"permissions"`
	}
	if !decode(w, r, &req) {
		return
	}
	code := strings.NewReplacer(" ", "", "-", "").Replace(req.Code)
	var errs []fieldError
	if len(code) != signal.CodeDigits || strings.Trim(code, "0123456789") != "" {
		errs = append(errs, fieldError{"code", "invalid_code", "code must be the nine digits the user reads out."})
	}
	ticket, terrs := checkTicket(req.Ticket, true)
	errs = append(append(errs, terrs...), checkPermissions(req.Permissions)...)
	if len(errs) > 0 {
		writeFieldErrors(w, errs)
		return
	}
	sess, err := a.cfg.Hub.ClaimCode(r, p.User, code, ticket, req.Permissions)
	var limited *signal.RateLimitError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(int(limited.RetryAfter.Seconds()+0.999)))
		writeError(w, http.StatusTooManyRequests, "rate_limited", "Too many codes tried. Wait a moment and try again.")
	case errors.Is(err, signal.ErrCodeUnknown):
		writeError(w, http.StatusNotFound, "code_not_found", "No computer is waiting with that code. Check the digits with the user, or ask them to start the host again.")
	case err != nil:
		a.log.ErrorContext(r.Context(), "claim code", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "The session could not be started; try again.")
	default:
		writeJSON(w, http.StatusCreated, a.sessionJSON(r, usernames{}, sess))
	}
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	q := r.URL.Query()
	f := store.SessionFilter{TicketID: q.Get("ticket"), TicketSystem: q.Get("ticket_system"), State: q.Get("state"), Limit: 100}
	errs := checkQuery(q, "ticket", "ticket_system", "technician", "state", "since", "until", "after", "limit")
	if msg := textProblem("ticket", f.TicketID, maxTicketID); msg != "" {
		errs = append(errs, fieldError{"ticket", "invalid_ticket", msg})
	}
	switch f.State {
	case "", store.StateWaiting, store.StateActive, store.StateEnded:
	default:
		errs = append(errs, fieldError{"state", "invalid_state", "state must be waiting, active or ended."})
	}
	for _, name := range []string{"since", "until"} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				errs = append(errs, fieldError{name, "invalid_time", name + " must be an RFC 3339 time such as 2026-11-29T09:00:00Z."})
			} else if name == "since" {
				f.Since = t
			} else {
				f.Until = t
			}
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			errs = append(errs, fieldError{"limit", "invalid_limit", "limit must be a number from 1 to 500."})
		}
		f.Limit = n
	}
	if name := q.Get("technician"); name != "" {
		u, err := a.cfg.Store.UserByName(r.Context(), name)
		if err != nil {
			errs = append(errs, fieldError{"technician", "invalid_technician", "technician must name an existing account."})
		} else {
			f.Technician = u.ID
		}
	}
	if id := q.Get("after"); id != "" {
		sess, ok := a.visibleSession(r, p, id)
		if !ok {
			errs = append(errs, fieldError{"after", "invalid_after", "after must be the id of a session you can see: the last of the page before."})
		}
		f.After = sess
	}
	if len(errs) > 0 {
		writeFieldErrors(w, errs)
		return
	}
	if p.User.Role == auth.RoleTechnician {
		f.Visible = p.User.ID
	}
	list, err := a.cfg.Store.ListSessions(r.Context(), f)
	if err != nil {
		a.log.ErrorContext(r.Context(), "list sessions", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "Sessions could not be listed; try again.")
		return
	}
	out := struct {
		Sessions []sessionJSON `json:"sessions"`
	}{Sessions: []sessionJSON{}}
	names := usernames{}
	for _, s := range list {
		out.Sessions = append(out.Sessions, a.sessionJSON(r, names, s))
	}
	writeJSON(w, http.StatusOK, out)
}

// visibleSession returns the session id, if p may see it.
func (a *API) visibleSession(r *http.Request, p *auth.Principal, id string) (*store.Session, bool) {
	sess, err := a.cfg.Store.SessionByID(r.Context(), id)
	if err != nil || !a.cfg.Hub.CanAccess(r.Context(), p.User, sess) {
		return nil, false
	}
	return sess, true
}

// checkQuery refuses query parameters given more than once, and those an
// endpoint does not take: a misspelt filter would otherwise be ignored, and
// the answer would silently hold everything.
func checkQuery(q url.Values, known ...string) []fieldError {
	var errs []fieldError
	for _, name := range known {
		if len(q[name]) > 1 {
			errs = append(errs, fieldError{name, "invalid_query", name + " may be given once."})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(known, name) {
			takes := strings.Join(known, ", ")
			if takes == "" {
				takes = "none"
			}
			errs = append(errs, fieldError{name, "unknown_parameter", "Unknown query parameter " + strconv.Quote(name) + "; this endpoint takes " + takes + "."})
		}
	}
	return errs
}

// takesNoQuery answers 400 to a query parameter given to a list that takes
// none: a misspelt filter must not list everything. false means answered.
func takesNoQuery(w http.ResponseWriter, r *http.Request) bool {
	if errs := checkQuery(r.URL.Query()); len(errs) > 0 {
		writeFieldErrors(w, errs)
		return false
	}
	return true
}

func (a *API) getSession(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	sess, ok := a.visibleSession(r, p, r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "No such session, or it is not yours.")
		return
	}
	writeJSON(w, http.StatusOK, a.sessionJSON(r, usernames{}, sess))
}

func (a *API) endSession(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req struct {
		// Notes are the technician's closing notes, sent with session.ended.
		Notes string `json:"notes"`
	}
	if !decodeOptional(w, r, &req) {
		return
	}
	if errs := checkNotes(req.Notes); errs != nil {
		writeFieldErrors(w, errs)
		return
	}
	if !a.recordClosingNotes(w, r, p, req.Notes) {
		return
	}
	sess, err := a.cfg.Hub.EndSession(r.Context(), p.User, r.PathValue("id"), "")
	switch {
	case errors.Is(err, signal.ErrNotFound), errors.Is(err, signal.ErrForbidden):
		writeError(w, http.StatusNotFound, "not_found", "No such session, or it is not yours.")
	case err != nil:
		a.log.ErrorContext(r.Context(), "end session", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "The session could not be ended; try again.")
	default:
		writeJSON(w, http.StatusOK, a.sessionJSON(r, usernames{}, sess))
	}
}

type eventJSON struct {
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"`
	Type   string          `json:"type"`
	Detail json.RawMessage `json:"detail"`
}

func (a *API) sessionEvents(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	if !takesNoQuery(w, r) {
		return
	}
	sess, ok := a.visibleSession(r, p, r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "No such session, or it is not yours.")
		return
	}
	events, err := a.cfg.Store.Events(r.Context(), sess.ID)
	if err != nil {
		a.log.ErrorContext(r.Context(), "list events", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "Events could not be listed; try again.")
		return
	}
	out := struct {
		Events []eventJSON `json:"events"`
	}{Events: []eventJSON{}}
	for _, e := range events {
		out.Events = append(out.Events, eventJSON{At: e.At, Actor: e.Actor, Type: e.Type, Detail: json.RawMessage(e.Detail)})
	}
	writeJSON(w, http.StatusOK, out)
}

// invite adds a colleague to a session, or hands it over to them.
func (a *API) invite(handOver bool) func(http.ResponseWriter, *http.Request, *auth.Principal) {
	return func(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
		var req struct {
			Username string `json:"username"`
		}
		if !decode(w, r, &req) {
			return
		}
		// Who may not invite learns nothing of the colleague they name.
		if _, err := a.cfg.Hub.MayInvite(r.Context(), p.User, r.PathValue("id")); err != nil {
			a.inviteError(w, r, err)
			return
		}
		// Supervisors watch every session without an invitation, and never
		// work one; a disabled account can do neither.
		colleague, err := a.cfg.Store.UserByName(r.Context(), req.Username)
		switch {
		case err != nil:
			writeFieldErrors(w, []fieldError{{"username", "invalid_username", "username must name a technician or admin account."}})
			return
		case colleague.Disabled:
			writeFieldErrors(w, []fieldError{{"username", "account_disabled", "The account " + colleague.Username + " is disabled; name an active technician or admin account."}})
			return
		case colleague.Role == auth.RoleSupervisor:
			writeFieldErrors(w, []fieldError{{"username", "invalid_username", colleague.Username + " is a supervisor: supervisors watch any session without an invitation and cannot take one over. Name a technician or admin account."}})
			return
		}
		if err := a.cfg.Hub.Invite(r.Context(), p.User, r.PathValue("id"), colleague, handOver); err != nil {
			a.inviteError(w, r, err)
			return
		}
		sess, _ := a.cfg.Store.SessionByID(r.Context(), r.PathValue("id"))
		writeJSON(w, http.StatusOK, a.sessionJSON(r, usernames{}, sess))
	}
}

// inviteError answers an invitation or handover the hub refused.
func (a *API) inviteError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, signal.ErrNotFound), errors.Is(err, signal.ErrForbidden):
		writeError(w, http.StatusNotFound, "not_found", "No such session, or it is not yours.")
	case errors.Is(err, signal.ErrNotTechnician):
		writeError(w, http.StatusForbidden, "forbidden", "Only the session's technician or an admin may invite colleagues or hand the session over.")
	case errors.Is(err, signal.ErrEnded):
		writeError(w, http.StatusConflict, "session_ended", "The session has ended.")
	default:
		a.log.ErrorContext(r.Context(), "invite", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "The colleague could not be added; try again.")
	}
}
