package api

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/store"
)

// TestWebhookDeliveriesPages: an admin looking for a failed delivery among
// many lists only the failed ones, and pages back through any number of
// deliveries with before, the last of the page before, also through
// deliveries made in the same millisecond. Bad filters are refused field by
// field, as limit is.
func TestWebhookDeliveriesPages(t *testing.T) {
	b := newTestBroker(t)
	ctx := context.Background()
	admin, key := b.user("ada", "admin")
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	// Disabled, so that the dispatcher leaves the deliveries as made here.
	for _, id := range []string{"wh_1", "wh_2"} {
		ep := &store.WebhookEndpoint{ID: id, URL: "https://tickets.example/" + id, Secret: "whsec_x", Events: []string{"session.created"},
			CreatedBy: admin.ID, CreatedAt: now}
		if err := b.store.CreateWebhookEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
	}
	ev := &store.WebhookEvent{ID: "evt_1", Type: "session.created", Payload: []byte("{}"), CreatedAt: now}
	if _, _, err := b.store.AddWebhookEvent(ctx, ev, now, func() string { return "" }); err != nil {
		t.Fatal(err)
	}
	// dlv_0 first, then dlv_1 to dlv_5 in one millisecond; dlv_1 and dlv_3 failed.
	for i := range 6 {
		at := now.Add(time.Second)
		if i == 0 {
			at = now
		}
		dl := &store.WebhookDelivery{ID: fmt.Sprint("dlv_", i), EndpointID: "wh_1", EventID: "evt_1", State: store.DeliveryPending,
			NextAttemptAt: at, CreatedAt: at, UpdatedAt: at}
		if err := b.store.AddWebhookDelivery(ctx, dl); err != nil {
			t.Fatal(err)
		}
		state := store.DeliverySucceeded
		if i == 1 || i == 3 {
			state = store.DeliveryFailed
		}
		if err := b.store.RecordWebhookAttempt(ctx, &store.WebhookAttempt{DeliveryID: dl.ID, Attempt: 1, At: at}, state, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	other := &store.WebhookDelivery{ID: "dlv_other", EndpointID: "wh_2", EventID: "evt_1", State: store.DeliveryPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}
	if err := b.store.AddWebhookDelivery(ctx, other); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"dlv_5", "dlv_4", "dlv_3", "dlv_2", "dlv_1", "dlv_0"}},
		{"?limit=2", []string{"dlv_5", "dlv_4"}},
		{"?limit=2&before=dlv_4", []string{"dlv_3", "dlv_2"}},
		{"?limit=2&before=dlv_2", []string{"dlv_1", "dlv_0"}},
		{"?before=dlv_0", []string{}},
		{"?state=failed", []string{"dlv_3", "dlv_1"}},
		{"?state=failed&limit=1&before=dlv_3", []string{"dlv_1"}},
		{"?state=succeeded&before=dlv_3", []string{"dlv_2", "dlv_0"}},
		{"?state=pending", []string{}},
	} {
		status, out := b.call("GET", "/api/v1/webhooks/wh_1/deliveries"+tc.query, key, nil)
		got := []string{}
		list, _ := out["deliveries"].([]any)
		for _, d := range list {
			got = append(got, d.(map[string]any)["id"].(string))
		}
		if status != 200 || !slices.Equal(got, tc.want) {
			t.Errorf("deliveries%s: %d %v, want %v", tc.query, status, got, tc.want)
		}
	}

	for _, tc := range []struct{ query, code, field string }{
		{"?state=lost", "invalid_state", "state"},
		{"?before=dlv_nope", "invalid_before", "before"},
		{"?before=dlv_other", "invalid_before", "before"}, // another endpoint's
		{"?limit=0", "invalid_limit", "limit"},
		{"?page=2", "unknown_parameter", "page"},
		{"?state=failed&state=pending", "invalid_query", "state"},
	} {
		status, out := b.call("GET", "/api/v1/webhooks/wh_1/deliveries"+tc.query, key, nil)
		e, _ := out["error"].(map[string]any)
		fields, _ := e["fields"].([]any)
		if status != 400 || e["code"] != tc.code || len(fields) != 1 || fields[0].(map[string]any)["field"] != tc.field {
			t.Errorf("deliveries%s: %d %v, want 400 %s on %s", tc.query, status, out, tc.code, tc.field)
		}
	}
	// Every problem is told at once.
	status, out := b.call("GET", "/api/v1/webhooks/wh_1/deliveries?state=lost&limit=500", key, nil)
	if e, _ := out["error"].(map[string]any); status != 400 || e["code"] != "invalid_request" || len(e["fields"].([]any)) != 2 {
		t.Errorf("two bad filters: %d %v", status, out)
	}
}
