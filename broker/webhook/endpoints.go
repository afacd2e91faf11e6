package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/store"
)

// Errors of the admin operations.
var (
	ErrNotFound         = errors.New("no such webhook endpoint or delivery")
	ErrEndpointDisabled = errors.New("webhook endpoint is disabled")
	ErrTooManyEndpoints = errors.New("too many webhook endpoints")
	// ErrDuplicateURL: the URL already has an endpoint. Two would get
	// every event twice, signed with two secrets.
	ErrDuplicateURL = errors.New("webhook endpoint URL already registered")
)

// MaxEndpoints bounds how many endpoints the broker keeps.
const MaxEndpoints = 50

// maxDescription bounds an endpoint's description, in bytes.
const maxDescription = 256

// secretPrefix makes a leaked secret easy to recognise.
const secretPrefix = "whsec_"

// EndpointSpec is what an admin gives to register an endpoint.
type EndpointSpec struct {
	URL         string
	Events      []string
	Description string
}

// EndpointUpdate changes an endpoint; nil fields stay as they are.
type EndpointUpdate struct {
	Events      *[]string
	Description *string
	Enabled     *bool
}

func checkEvents(events []string) error {
	if len(events) == 0 {
		return &FieldError{"events", "invalid_events", "events must list at least one of " + strings.Join(EventTypes, ", ") + "."}
	}
	for i, e := range events {
		if !slices.Contains(EventTypes, e) {
			return &FieldError{"events", "invalid_events", fmt.Sprintf("events[%d] is not an event type; use %s.", i, strings.Join(EventTypes, ", "))}
		}
		if slices.Contains(events[:i], e) {
			return &FieldError{"events", "invalid_events", fmt.Sprintf("events[%d] repeats %s.", i, e)}
		}
	}
	return nil
}

func checkDescription(s string) error {
	if len(s) > maxDescription || strings.ContainsFunc(s, unicode.IsControl) {
		return &FieldError{"description", "invalid_description", "description must be one line of at most 256 bytes."}
	}
	return nil
}

// CreateEndpoint checks spec, generates the endpoint's signing secret and
// stores it. The returned endpoint holds the secret: the only time it is
// shown.
func (d *Dispatcher) CreateEndpoint(ctx context.Context, spec EndpointSpec, by *store.User) (*store.WebhookEndpoint, error) {
	u, err := d.cfg.CheckURL(ctx, spec.URL)
	if err != nil {
		return nil, err
	}
	if err := checkEvents(spec.Events); err != nil {
		return nil, err
	}
	if err := checkDescription(spec.Description); err != nil {
		return nil, err
	}
	// Checking and adding happen as one, so that two admins adding the
	// same URL at once do not both succeed.
	d.createMu.Lock()
	defer d.createMu.Unlock()
	all, err := d.cfg.Store.WebhookEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range all {
		if old, err := url.Parse(e.URL); err == nil && sameURL(old, u) {
			return nil, ErrDuplicateURL
		}
	}
	if len(all) >= MaxEndpoints {
		return nil, ErrTooManyEndpoints
	}
	ep := &store.WebhookEndpoint{
		ID:          "wh_" + auth.RandomToken(9),
		URL:         u.String(),
		Secret:      newSecret(),
		Events:      slices.Clone(spec.Events),
		Description: spec.Description,
		Enabled:     true,
		CreatedBy:   by.ID,
		CreatedAt:   d.cfg.Now(),
	}
	if err := d.cfg.Store.CreateWebhookEndpoint(ctx, ep); err != nil {
		return nil, err
	}
	d.endpointsChanged(ctx)
	d.log.InfoContext(ctx, "webhook endpoint added", "endpoint", ep.ID, "host", u.Host, "events", strings.Join(ep.Events, ","), "by", by.Username)
	return ep, nil
}

func newSecret() string { return secretPrefix + auth.RandomToken(32) }

// sameURL reports whether a and b reach the same receiver: scheme and host
// regardless of case, the default port written or not, the same path and
// query.
func sameURL(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if strings.EqualFold(u.Scheme, "http") {
			return "80"
		}
		return "443"
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b) &&
		a.EscapedPath() == b.EscapedPath() && a.RawQuery == b.RawQuery
}

// Endpoints lists every endpoint, oldest first.
func (d *Dispatcher) Endpoints(ctx context.Context) ([]*store.WebhookEndpoint, error) {
	return d.cfg.Store.WebhookEndpoints(ctx)
}

// Endpoint looks an endpoint up.
func (d *Dispatcher) Endpoint(ctx context.Context, id string) (*store.WebhookEndpoint, error) {
	ep, err := d.cfg.Store.WebhookEndpointByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	return ep, err
}

// UpdateEndpoint changes an endpoint's events, description or enabled
// flag. A disabled endpoint gets no new deliveries; its pending ones wait
// and go out when it is enabled again.
func (d *Dispatcher) UpdateEndpoint(ctx context.Context, id string, up EndpointUpdate, by *store.User) (*store.WebhookEndpoint, error) {
	if up.Events != nil {
		if err := checkEvents(*up.Events); err != nil {
			return nil, err
		}
	}
	if up.Description != nil {
		if err := checkDescription(*up.Description); err != nil {
			return nil, err
		}
	}
	ep, err := d.cfg.Store.UpdateWebhookEndpoint(ctx, id, store.WebhookEndpointChange{Events: up.Events, Description: up.Description, Enabled: up.Enabled})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	d.endpointsChanged(ctx)
	d.log.InfoContext(ctx, "webhook endpoint changed", "endpoint", ep.ID, "enabled", ep.Enabled, "events", strings.Join(ep.Events, ","), "by", by.Username)
	if ep.Enabled {
		d.poke()
	}
	return ep, nil
}

// SecretGrace is how long, by default, an endpoint's old secret keeps
// signing deliveries after it is given a new one, and the longest time an
// admin may ask for: a day for the ticket system's admins to save the new
// secret.
const SecretGrace = 24 * time.Hour

// RotateSecret gives an endpoint a new signing secret; the returned
// endpoint holds it, the only time it is shown. For grace from now every
// request, retries of earlier events too, carries two signatures, by the
// new secret and by the old one, so that the receiver goes on accepting
// deliveries until it has saved the new secret; then the old one is
// dropped. With no grace the old secret stops at once (as after a leak),
// and a delivery the receiver refuses until it has the new one is retried
// on its schedule. A secret kept from an earlier change stops at once
// either way. Pending deliveries and history are kept.
func (d *Dispatcher) RotateSecret(ctx context.Context, id string, grace time.Duration, by *store.User) (*store.WebhookEndpoint, error) {
	if grace < 0 || grace > SecretGrace {
		return nil, &FieldError{"grace_seconds", "invalid_grace", "grace_seconds must be a number of seconds from 0 to 86400 (24 hours)."}
	}
	ep, err := d.Endpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	ep.OldSecret, ep.OldSecretUntil = "", time.Time{}
	if grace > 0 {
		ep.OldSecret, ep.OldSecretUntil = ep.Secret, d.cfg.Now().Add(grace)
	}
	ep.Secret = newSecret()
	if err := d.cfg.Store.SetWebhookEndpointSecret(ctx, ep.ID, ep.Secret, ep.OldSecretUntil); errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	d.log.InfoContext(ctx, "webhook secret changed", "endpoint", ep.ID, "host", hostOf(ep.URL), "old_secret_for", grace, "by", by.Username)
	return ep, nil
}

// oldSecrets returns the endpoint's old secret while it still signs
// deliveries beside the new one.
func oldSecrets(ep *store.WebhookEndpoint, now time.Time) []string {
	if ep.OldSecret == "" || !now.Before(ep.OldSecretUntil) {
		return nil
	}
	return []string{ep.OldSecret}
}

// DeleteEndpoint removes an endpoint and its delivery history.
func (d *Dispatcher) DeleteEndpoint(ctx context.Context, id string, by *store.User) error {
	err := d.cfg.Store.DeleteWebhookEndpoint(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	if err == nil {
		d.endpointsChanged(ctx)
		d.log.InfoContext(ctx, "webhook endpoint deleted", "endpoint", id, "by", by.Username)
	}
	return err
}

func (d *Dispatcher) endpointsChanged(ctx context.Context) {
	if err := d.refreshSubscriptions(context.WithoutCancel(ctx)); err != nil {
		d.log.ErrorContext(ctx, "reload webhook subscriptions; sending every event until it works", "err", err)
	}
}

// Deliveries returns an endpoint's deliveries that f picks, newest first,
// with their attempts. A FieldError says f.Before is not one of the
// endpoint's deliveries.
func (d *Dispatcher) Deliveries(ctx context.Context, endpoint string, f store.WebhookDeliveryFilter) ([]*store.WebhookDelivery, map[string][]*store.WebhookAttempt, error) {
	if _, err := d.Endpoint(ctx, endpoint); err != nil {
		return nil, nil, err
	}
	if f.Before != "" {
		dl, err := d.cfg.Store.WebhookDeliveryByID(ctx, f.Before)
		if errors.Is(err, store.ErrNotFound) || err == nil && dl.EndpointID != endpoint {
			return nil, nil, &FieldError{"before", "invalid_before", "before must be the id of a delivery of this endpoint: the last of the page before."}
		}
		if err != nil {
			return nil, nil, err
		}
	}
	list, err := d.cfg.Store.WebhookDeliveries(ctx, endpoint, f)
	if err != nil {
		return nil, nil, err
	}
	ids := make([]string, len(list))
	for i, dl := range list {
		ids[i] = dl.ID
	}
	attempts, err := d.cfg.Store.WebhookAttempts(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	return list, attempts, nil
}

// Redeliver sends a delivery's event to its endpoint again, as a new
// delivery with its own attempts and the same event ID.
func (d *Dispatcher) Redeliver(ctx context.Context, endpoint, delivery string, by *store.User) (*store.WebhookDelivery, error) {
	ep, err := d.Endpoint(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	orig, err := d.cfg.Store.WebhookDeliveryByID(ctx, delivery)
	if errors.Is(err, store.ErrNotFound) || err == nil && orig.EndpointID != ep.ID {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if !ep.Enabled {
		return nil, ErrEndpointDisabled
	}
	now := d.cfg.Now()
	dl := &store.WebhookDelivery{ID: newDeliveryID(), EndpointID: ep.ID, EventID: orig.EventID, EventType: orig.EventType,
		State: store.DeliveryPending, NextAttemptAt: now, RedeliveryOf: orig.ID, CreatedAt: now, UpdatedAt: now}
	if err := d.cfg.Store.AddWebhookDelivery(ctx, dl); err != nil {
		return nil, err
	}
	d.log.InfoContext(ctx, "webhook redelivery", "endpoint", ep.ID, "delivery", dl.ID, "of", orig.ID, "by", by.Username)
	d.poke()
	return dl, nil
}
