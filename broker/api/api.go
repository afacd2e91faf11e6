// Package api serves the broker's REST API v1 (sessions, login) and its
// error format: JSON with a stable code and a human message.
package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/signal"
	"github.com/tether-support/tether/broker/store"
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
}

// API is the REST handler set.
type API struct {
	cfg Config
	log *slog.Logger
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
	return &API{cfg: cfg, log: cfg.Logger.With("component", "api")}, nil
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/login", a.login)
	mux.HandleFunc("POST /api/v1/logout", a.logout)
	mux.HandleFunc("GET /api/v1/me", a.authed(a.me))
	mux.HandleFunc("POST /api/v1/sessions", a.authed(a.createSession))
	mux.HandleFunc("GET /api/v1/sessions", a.authed(a.listSessions))
	mux.HandleFunc("GET /api/v1/sessions/{id}", a.authed(a.getSession))
	mux.HandleFunc("POST /api/v1/sessions/{id}/end", a.authed(a.endSession))
	mux.HandleFunc("GET /api/v1/sessions/{id}/events", a.authed(a.sessionEvents))
	mux.HandleFunc("POST /api/v1/sessions/{id}/invite", a.authed(a.invite(false)))
	mux.HandleFunc("POST /api/v1/sessions/{id}/handover", a.authed(a.invite(true)))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "No such API endpoint.")
	})
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var body errorBody
	body.Error.Code, body.Error.Message = code, message
	writeJSON(w, status, body)
}

// decode reads a bounded JSON body into v, refusing unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Send JSON with Content-Type: application/json.")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "The request body is larger than 64 KiB.")
		case errors.Is(err, io.EOF):
			writeError(w, http.StatusBadRequest, "invalid_json", "The request body is empty; send a JSON object.")
		default:
			writeError(w, http.StatusBadRequest, "invalid_json", "The request body is not valid JSON: "+err.Error())
		}
		return false
	}
	return true
}

// authed wraps a handler that needs a principal, enforcing CSRF for
// cookie-authenticated changes.
func (a *API) authed(h func(http.ResponseWriter, *http.Request, *auth.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := a.cfg.Auth.Authenticate(r)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "unauthorized", "Log in or send a valid API key.")
			return
		}
		if !auth.CheckCSRF(p, r) {
			writeError(w, http.StatusForbidden, "csrf_failed", "Missing or wrong CSRF token; reload the console.")
			return
		}
		h(w, r, p)
	}
}

type userJSON struct {
	Username string `json:"username"`
	Role     string `json:"role"`
}

type meJSON struct {
	User      userJSON `json:"user"`
	CSRFToken string   `json:"csrf_token,omitempty"`
}

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Username == "" || req.Password == "" {
		writeError(w, http.StatusBadRequest, "missing_credentials", "Enter a username and a password.")
		return
	}
	token, login, user, err := a.cfg.Auth.Login(r.Context(), req.Username, req.Password)
	switch {
	case errors.Is(err, auth.ErrLockedOut):
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusTooManyRequests, "locked_out", "Too many failed logins. Wait a moment and try again.")
		return
	case errors.Is(err, auth.ErrBadCredentials):
		writeError(w, http.StatusUnauthorized, "bad_credentials", "Wrong username or password.")
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
	writeJSON(w, http.StatusOK, struct {
		meJSON
		Token string `json:"token"`
	}{meJSON{userJSON{user.Username, user.Role}, login.CSRF}, token})
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	p, err := a.cfg.Auth.Authenticate(r)
	if err == nil && auth.CheckCSRF(p, r) {
		if c, err := r.Cookie(auth.CookieName); err == nil {
			a.cfg.Auth.Logout(r.Context(), c.Value)
		} else if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			a.cfg.Auth.Logout(r.Context(), token)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: auth.CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) me(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	writeJSON(w, http.StatusOK, meJSON{userJSON{p.User.Username, p.User.Role}, p.CSRF})
}

type ticketJSON struct {
	ID string `json:"id"`
}

type sessionJSON struct {
	ID            string             `json:"id"`
	State         string             `json:"state"`
	Code          string             `json:"code,omitempty"`
	CodeExpiresAt *time.Time         `json:"code_expires_at,omitempty"`
	Ticket        *ticketJSON        `json:"ticket,omitempty"`
	Host          *protocol.HostInfo `json:"host,omitempty"`
	CreatedAt     time.Time          `json:"created_at"`
	EndedAt       *time.Time         `json:"ended_at,omitempty"`
	EndReason     string             `json:"end_reason,omitempty"`
	Permissions   []string           `json:"permissions"`
	ConsoleURL    string             `json:"console_url"`
}

func (a *API) sessionJSON(s *store.Session) sessionJSON {
	out := sessionJSON{
		ID: s.ID, State: s.State, CreatedAt: s.CreatedAt, EndReason: s.EndReason, Permissions: s.Permissions,
		ConsoleURL: a.cfg.PublicURL + "/#/session/" + s.ID,
	}
	if s.TicketID != "" {
		out.Ticket = &ticketJSON{ID: s.TicketID}
	}
	if s.HostJSON != "" {
		var h protocol.HostInfo
		if json.Unmarshal([]byte(s.HostJSON), &h) == nil {
			out.Host = &h
		}
	}
	if !s.EndedAt.IsZero() {
		t := s.EndedAt
		out.EndedAt = &t
	}
	return out
}

// maxTicketID bounds a ticket reference.
const maxTicketID = 128

func (a *API) createSession(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req struct {
		Ticket *ticketJSON `json:"ticket"`
		// CodeTTLSeconds overrides the code lifetime (60 s to 24 h).
		CodeTTLSeconds int `json:"code_ttl_seconds"`
		// Permissions the technician will ask the user for.
		Permissions []string `json:"permissions"`
	}
	if r.ContentLength != 0 && !decode(w, r, &req) {
		return
	}
	var ticket string
	if req.Ticket != nil {
		ticket = strings.TrimSpace(req.Ticket.ID)
		if len(ticket) > maxTicketID || !utf8.ValidString(ticket) {
			writeError(w, http.StatusBadRequest, "invalid_ticket", "ticket.id must be valid text of at most 128 bytes.")
			return
		}
	}
	ttl := time.Duration(req.CodeTTLSeconds) * time.Second
	if req.CodeTTLSeconds != 0 && (ttl < time.Minute || ttl > 24*time.Hour) {
		writeError(w, http.StatusBadRequest, "invalid_code_ttl", "code_ttl_seconds must be between 60 and 86400.")
		return
	}
	if err := protocol.CheckPermissions(req.Permissions); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_permissions", "permissions must be a list of view, control, clipboard, files, shell without repeats.")
		return
	}
	sess, code, err := a.cfg.Hub.CreateSession(r.Context(), p.User, ticket, req.Permissions, ttl)
	if err != nil {
		a.log.ErrorContext(r.Context(), "create session", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "The session could not be created; try again.")
		return
	}
	out := a.sessionJSON(sess)
	out.Code = code
	exp := sess.CodeExpiresAt
	out.CodeExpiresAt = &exp
	writeJSON(w, http.StatusCreated, out)
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var owner int64
	if p.User.Role == auth.RoleTechnician {
		owner = p.User.ID
	}
	list, err := a.cfg.Store.ListSessions(r.Context(), owner, 100)
	if err != nil {
		a.log.ErrorContext(r.Context(), "list sessions", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "Sessions could not be listed; try again.")
		return
	}
	out := struct {
		Sessions []sessionJSON `json:"sessions"`
	}{Sessions: []sessionJSON{}}
	for _, s := range list {
		out.Sessions = append(out.Sessions, a.sessionJSON(s))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getSession(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	sess, err := a.cfg.Store.SessionByID(r.Context(), r.PathValue("id"))
	if err != nil || !a.cfg.Hub.CanAccess(r.Context(), p.User, sess) {
		writeError(w, http.StatusNotFound, "not_found", "No such session, or it is not yours.")
		return
	}
	writeJSON(w, http.StatusOK, a.sessionJSON(sess))
}

func (a *API) endSession(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req struct {
		// Notes are the technician's closing notes, sent with session.ended.
		Notes string `json:"notes"`
	}
	if r.ContentLength != 0 && !decode(w, r, &req) {
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
		writeJSON(w, http.StatusOK, a.sessionJSON(sess))
	}
}

type eventJSON struct {
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"`
	Type   string          `json:"type"`
	Detail json.RawMessage `json:"detail"`
}

func (a *API) sessionEvents(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	sess, err := a.cfg.Store.SessionByID(r.Context(), r.PathValue("id"))
	if err != nil || !a.cfg.Hub.CanAccess(r.Context(), p.User, sess) {
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
		colleague, err := a.cfg.Store.UserByName(r.Context(), req.Username)
		if err != nil || colleague.Role == auth.RoleSupervisor && handOver {
			writeError(w, http.StatusBadRequest, "invalid_username", "username must name a technician or admin account.")
			return
		}
		err = a.cfg.Hub.Invite(r.Context(), p.User, r.PathValue("id"), colleague, handOver)
		switch {
		case errors.Is(err, signal.ErrNotFound), errors.Is(err, signal.ErrForbidden):
			writeError(w, http.StatusNotFound, "not_found", "No such session, or it is not yours.")
		case errors.Is(err, signal.ErrEnded):
			writeError(w, http.StatusConflict, "session_ended", "The session has ended.")
		case err != nil:
			a.log.ErrorContext(r.Context(), "invite", "err", err)
			writeError(w, http.StatusInternalServerError, "internal_error", "The colleague could not be added; try again.")
		default:
			sess, _ := a.cfg.Store.SessionByID(r.Context(), r.PathValue("id"))
			writeJSON(w, http.StatusOK, a.sessionJSON(sess))
		}
	}
}
