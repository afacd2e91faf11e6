package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/broker/webhook"
)

// RegisterWebhooks adds the admin endpoints that manage webhooks to mux,
// and tells d where this API is reached, for the links its events carry.
func (a *API) RegisterWebhooks(mux *http.ServeMux, d *webhook.Dispatcher) {
	d.SetPublicURL(a.cfg.PublicURL)
	h := &webhookAPI{API: a, d: d}
	mux.HandleFunc("POST /api/v1/webhooks", a.authed(auth.ScopeWebhooksAdmin, h.create))
	mux.HandleFunc("GET /api/v1/webhooks", a.authed(auth.ScopeWebhooksAdmin, h.list))
	mux.HandleFunc("GET /api/v1/webhooks/{id}", a.authed(auth.ScopeWebhooksAdmin, h.get))
	mux.HandleFunc("PATCH /api/v1/webhooks/{id}", a.authed(auth.ScopeWebhooksAdmin, h.update))
	mux.HandleFunc("DELETE /api/v1/webhooks/{id}", a.authed(auth.ScopeWebhooksAdmin, h.delete))
	mux.HandleFunc("POST /api/v1/webhooks/{id}/secret", a.authed(auth.ScopeWebhooksAdmin, h.rotateSecret))
	mux.HandleFunc("GET /api/v1/webhooks/{id}/deliveries", a.authed(auth.ScopeWebhooksAdmin, h.deliveries))
	mux.HandleFunc("POST /api/v1/webhooks/{id}/deliveries/{delivery}/redeliver", a.authed(auth.ScopeWebhooksAdmin, h.redeliver))
}

type webhookAPI struct {
	*API
	d *webhook.Dispatcher
}

type webhookJSON struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Description string    `json:"description"`
	Enabled     bool      `json:"enabled"`
	CreatedAt   time.Time `json:"created_at"`
	// Secret is in the answers to the creation and to a new secret only.
	Secret string `json:"secret,omitempty"`
	// OldSecretExpiresAt is when the secret a new one replaced stops
	// signing deliveries; left out when none does.
	OldSecretExpiresAt *time.Time `json:"old_secret_expires_at,omitempty"`
}

func (h *webhookAPI) toWebhookJSON(e *store.WebhookEndpoint) webhookJSON {
	out := webhookJSON{ID: e.ID, URL: e.URL, Events: e.Events, Description: e.Description, Enabled: e.Enabled, CreatedAt: e.CreatedAt}
	if e.OldSecret != "" && e.OldSecretUntil.After(h.cfg.Now()) {
		t := e.OldSecretUntil
		out.OldSecretExpiresAt = &t
	}
	return out
}

type attemptJSON struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code"`
	Error      string    `json:"error"`
	DurationMS int64     `json:"duration_ms"`
	Response   string    `json:"response"`
}

type deliveryJSON struct {
	ID            string        `json:"id"`
	EventID       string        `json:"event_id"`
	EventType     string        `json:"event_type"`
	State         string        `json:"state"`
	AttemptCount  int           `json:"attempt_count"`
	NextAttemptAt *time.Time    `json:"next_attempt_at,omitempty"`
	LastStatus    int           `json:"last_status_code"`
	LastError     string        `json:"last_error"`
	RedeliveryOf  string        `json:"redelivery_of,omitempty"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
	Attempts      []attemptJSON `json:"attempts"`
}

func toDeliveryJSON(d *store.WebhookDelivery, attempts []*store.WebhookAttempt) deliveryJSON {
	out := deliveryJSON{ID: d.ID, EventID: d.EventID, EventType: d.EventType, State: d.State, AttemptCount: d.Attempts,
		LastStatus: d.LastStatus, LastError: d.LastError, RedeliveryOf: d.RedeliveryOf, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		Attempts: []attemptJSON{}}
	if !d.NextAttemptAt.IsZero() {
		t := d.NextAttemptAt
		out.NextAttemptAt = &t
	}
	for _, a := range attempts {
		out.Attempts = append(out.Attempts, attemptJSON{a.Attempt, a.At, a.StatusCode, a.Error, a.Duration.Milliseconds(), a.Response})
	}
	return out
}

// fail answers an error of the webhook package.
func (h *webhookAPI) fail(w http.ResponseWriter, r *http.Request, err error, what string) {
	var fe *webhook.FieldError
	switch {
	case errors.As(err, &fe):
		writeFieldErrors(w, []fieldError{{fe.Field, fe.Code, fe.Message}})
	case errors.Is(err, webhook.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "No such webhook endpoint or delivery.")
	case errors.Is(err, webhook.ErrEndpointDisabled):
		writeError(w, http.StatusConflict, "endpoint_disabled", "The endpoint is disabled; enable it before redelivering.")
	case errors.Is(err, webhook.ErrDuplicateURL):
		writeError(w, http.StatusConflict, "webhook_exists", "A webhook for this address already exists: edit its events (Edit in the console, PATCH in the API) instead of adding the address again.")
	case errors.Is(err, webhook.ErrTooManyEndpoints):
		writeError(w, http.StatusConflict, "too_many_webhooks", "The broker keeps at most 50 webhook endpoints; delete one first.")
	default:
		h.log.ErrorContext(r.Context(), what, "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "The webhook could not be "+what+"; try again.")
	}
}

func (h *webhookAPI) create(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req struct {
		URL         string   `json:"url"`
		Events      []string `json:"events"`
		Description string   `json:"description"`
	}
	if !decode(w, r, &req) {
		return
	}
	ep, err := h.d.CreateEndpoint(r.Context(), webhook.EndpointSpec{URL: strings.TrimSpace(req.URL), Events: req.Events, Description: req.Description}, p.User)
	if err != nil {
		h.fail(w, r, err, "created")
		return
	}
	out := h.toWebhookJSON(ep)
	out.Secret = ep.Secret
	writeJSON(w, http.StatusCreated, out)
}

func (h *webhookAPI) list(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	if !takesNoQuery(w, r) {
		return
	}
	list, err := h.d.Endpoints(r.Context())
	if err != nil {
		h.fail(w, r, err, "listed")
		return
	}
	out := struct {
		Webhooks []webhookJSON `json:"webhooks"`
	}{Webhooks: []webhookJSON{}}
	for _, e := range list {
		out.Webhooks = append(out.Webhooks, h.toWebhookJSON(e))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *webhookAPI) get(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	ep, err := h.d.Endpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err, "read")
		return
	}
	writeJSON(w, http.StatusOK, h.toWebhookJSON(ep))
}

func (h *webhookAPI) update(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req struct {
		Events      *[]string `json:"events"`
		Description *string   `json:"description"`
		Enabled     *bool     `json:"enabled"`
	}
	if !decode(w, r, &req) {
		return
	}
	ep, err := h.d.UpdateEndpoint(r.Context(), r.PathValue("id"), webhook.EndpointUpdate{Events: req.Events, Description: req.Description, Enabled: req.Enabled}, p.User)
	if err != nil {
		h.fail(w, r, err, "changed")
		return
	}
	writeJSON(w, http.StatusOK, h.toWebhookJSON(ep))
}

// rotateSecret gives the endpoint a new signing secret and shows it, once.
// The old one goes on signing for grace_seconds, a day unless asked.
func (h *webhookAPI) rotateSecret(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	req := struct {
		GraceSeconds *int64 `json:"grace_seconds"`
	}{}
	if !decodeOptional(w, r, &req) {
		return
	}
	grace := webhook.SecretGrace
	if req.GraceSeconds != nil {
		if *req.GraceSeconds < 0 || *req.GraceSeconds > int64(webhook.SecretGrace/time.Second) {
			grace = -1 // refused, in the webhook package's words
		} else {
			grace = time.Duration(*req.GraceSeconds) * time.Second
		}
	}
	ep, err := h.d.RotateSecret(r.Context(), r.PathValue("id"), grace, p.User)
	if err != nil {
		h.fail(w, r, err, "given a new secret")
		return
	}
	out := h.toWebhookJSON(ep)
	out.Secret = ep.Secret
	writeJSON(w, http.StatusOK, out)
}

func (h *webhookAPI) delete(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	if err := h.d.DeleteEndpoint(r.Context(), r.PathValue("id"), p.User); err != nil {
		h.fail(w, r, err, "deleted")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deliveries lists an endpoint's deliveries, newest first, a page at a
// time: before, the last delivery of a page, asks for the next, so that an
// admin can reach a failed delivery however many came after it.
func (h *webhookAPI) deliveries(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	q := r.URL.Query()
	errs := checkQuery(q, "state", "before", "limit")
	f := store.WebhookDeliveryFilter{State: q.Get("state"), Before: q.Get("before"), Limit: 50}
	switch f.State {
	case "", store.DeliveryPending, store.DeliverySucceeded, store.DeliveryFailed:
	default:
		errs = append(errs, fieldError{"state", "invalid_state", "state must be pending, succeeded or failed."})
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			errs = append(errs, fieldError{"limit", "invalid_limit", "limit must be a number from 1 to 200."})
		}
		f.Limit = n
	}
	if len(errs) > 0 {
		writeFieldErrors(w, errs)
		return
	}
	list, attempts, err := h.d.Deliveries(r.Context(), r.PathValue("id"), f)
	if err != nil {
		h.fail(w, r, err, "listed")
		return
	}
	out := struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}{Deliveries: []deliveryJSON{}}
	for _, d := range list {
		out.Deliveries = append(out.Deliveries, toDeliveryJSON(d, attempts[d.ID]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *webhookAPI) redeliver(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	d, err := h.d.Redeliver(r.Context(), r.PathValue("id"), r.PathValue("delivery"), p.User)
	if err != nil {
		h.fail(w, r, err, "redelivered")
		return
	}
	writeJSON(w, http.StatusAccepted, toDeliveryJSON(d, nil))
}

// recordClosingNotes keeps the notes given when ending a session in its
// audit trail, where session.ended picks them up; checkNotes has checked
// them. It answers and returns false when they cannot be kept.
func (a *API) recordClosingNotes(w http.ResponseWriter, r *http.Request, p *auth.Principal, notes string) bool {
	notes = strings.TrimSpace(notes)
	if notes == "" {
		return true
	}
	sess, ok := a.visibleSession(r, p, r.PathValue("id"))
	if !ok {
		return true // ending answers for sessions that are missing or not the caller's
	}
	if sess.State == store.StateEnded {
		writeError(w, http.StatusConflict, "session_ended", "The session has already ended; closing notes go with ending it.")
		return false
	}
	detail, _ := json.Marshal(map[string]string{"notes": notes})
	err := a.cfg.Store.AddEvent(r.Context(), &store.Event{Session: sess.ID, At: a.cfg.Now(), Actor: p.User.Username, Type: webhook.ClosingNotesAudit, Detail: string(detail)})
	if err != nil {
		a.log.ErrorContext(r.Context(), "record closing notes", "session", sess.ID, "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "The closing notes could not be saved; try again.")
		return false
	}
	return true
}
