package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWebhookDeliveries(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	admin := &User{Username: "admin", PasswordHash: "x", Role: "admin", CreatedAt: now}
	if err := s.CreateUser(ctx, admin); err != nil {
		t.Fatal(err)
	}
	for i, ep := range []*WebhookEndpoint{
		{ID: "wh_a", URL: "https://a.example/hook", Secret: "whsec_a", Events: []string{"session.created", "session.ended"}, Enabled: true},
		{ID: "wh_b", URL: "https://b.example/hook", Secret: "whsec_b", Events: []string{"session.ended"}, Enabled: true},
		{ID: "wh_off", URL: "https://c.example/hook", Secret: "whsec_c", Events: []string{"session.ended"}, Enabled: false},
		{ID: "wh_new", URL: "https://d.example/hook", Secret: "whsec_d", Events: []string{"session.ended"}, Enabled: true},
	} {
		ep.CreatedBy, ep.CreatedAt = admin.ID, now.Add(time.Duration(i-2)*time.Second)
		if err := s.CreateWebhookEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateWebhookEndpoint(ctx, &WebhookEndpoint{ID: "wh_a", URL: "x", Secret: "y", CreatedBy: admin.ID}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate endpoint: %v", err)
	}
	got, err := s.WebhookEndpointByID(ctx, "wh_a")
	if err != nil || got.Secret != "whsec_a" || !slices.Equal(got.Events, []string{"session.created", "session.ended"}) || !got.Enabled {
		t.Fatalf("endpoint = %+v, %v", got, err)
	}

	n := 0
	newID := func() string { n++; return fmt.Sprintf("dlv_%d", n) }
	ended := &WebhookEvent{ID: "evt_1", Type: "session.ended", Session: "s_1", OnceKey: "session.ended:s_1", Payload: []byte(`{"id":"evt_1"}`), CreatedAt: now}
	ds, created, err := s.AddWebhookEvent(ctx, ended, now, newID)
	if err != nil || !created {
		t.Fatalf("add event: %v, %v", created, err)
	}
	// Only enabled subscribers that existed when the event happened get a
	// delivery.
	var eps []string
	for _, d := range ds {
		eps = append(eps, d.EndpointID)
	}
	if !slices.Equal(eps, []string{"wh_a", "wh_b"}) {
		t.Fatalf("deliveries to %v", eps)
	}
	// The same once-key is not stored twice.
	again := *ended
	again.ID = "evt_2"
	if ds, created, err := s.AddWebhookEvent(ctx, &again, now, newID); err != nil || created || len(ds) != 0 {
		t.Fatalf("second session.ended: %v, %v, %v", ds, created, err)
	}
	// Events without a key repeat.
	for _, id := range []string{"evt_3", "evt_4"} {
		if _, created, err := s.AddWebhookEvent(ctx, &WebhookEvent{ID: id, Type: "session.created", Payload: []byte("{}"), CreatedAt: now}, now.Add(time.Second), newID); err != nil || !created {
			t.Fatalf("event %s: %v, %v", id, created, err)
		}
	}

	due, err := s.DueWebhookDeliveries(ctx, now, 10)
	if err != nil || len(due) != 2 || due[0].EventType != "session.ended" {
		t.Fatalf("due at now: %v, %v", due, err)
	}
	due, _ = s.DueWebhookDeliveries(ctx, now.Add(time.Second), 10)
	if len(due) != 4 {
		t.Fatalf("due a second later: %d deliveries", len(due))
	}

	// A failed attempt reschedules; a success ends the delivery.
	first := ds[0]
	if err := s.RecordWebhookAttempt(ctx, &WebhookAttempt{DeliveryID: first.ID, Attempt: 1, At: now, StatusCode: 500, Error: "HTTP 500", Duration: 12 * time.Millisecond, Response: "oops"}, DeliveryPending, now.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	d, err := s.WebhookDeliveryByID(ctx, first.ID)
	if err != nil || d.State != DeliveryPending || d.Attempts != 1 || !d.NextAttemptAt.Equal(now.Add(10*time.Second)) || d.LastStatus != 500 {
		t.Fatalf("after failure: %+v, %v", d, err)
	}
	if err := s.RecordWebhookAttempt(ctx, &WebhookAttempt{DeliveryID: first.ID, Attempt: 2, At: now.Add(10 * time.Second), StatusCode: 204, Duration: 3 * time.Millisecond}, DeliverySucceeded, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	d, _ = s.WebhookDeliveryByID(ctx, first.ID)
	if d.State != DeliverySucceeded || d.Attempts != 2 || !d.NextAttemptAt.IsZero() || d.LastError != "" {
		t.Fatalf("after success: %+v", d)
	}
	attempts, err := s.WebhookAttempts(ctx, []string{first.ID, "dlv_none"})
	if err != nil || len(attempts[first.ID]) != 2 || attempts[first.ID][0].StatusCode != 500 || attempts[first.ID][0].Duration != 12*time.Millisecond || attempts[first.ID][1].Attempt != 2 {
		t.Fatalf("attempts = %v, %v", attempts, err)
	}

	// A redelivery is a new delivery of the same event.
	re := &WebhookDelivery{ID: "dlv_re", EndpointID: "wh_a", EventID: "evt_1", State: DeliveryPending, NextAttemptAt: now, RedeliveryOf: first.ID, CreatedAt: now.Add(time.Minute), UpdatedAt: now.Add(time.Minute)}
	if err := s.AddWebhookDelivery(ctx, re); err != nil {
		t.Fatal(err)
	}
	list, err := s.WebhookDeliveries(ctx, "wh_a", WebhookDeliveryFilter{Limit: 10})
	if err != nil || len(list) != 4 || list[0].ID != "dlv_re" || list[0].RedeliveryOf != first.ID || list[0].EventType != "session.ended" {
		t.Fatalf("deliveries of wh_a = %v, %v", list, err)
	}

	// Disabled endpoints' deliveries wait.
	off := false
	if a, err := s.UpdateWebhookEndpoint(ctx, "wh_a", WebhookEndpointChange{Enabled: &off}); err != nil || a.Enabled {
		t.Fatalf("disabled endpoint: %+v, %v", a, err)
	}
	due, _ = s.DueWebhookDeliveries(ctx, now.Add(time.Hour), 10)
	for _, d := range due {
		if d.EndpointID == "wh_a" {
			t.Fatalf("due delivery of a disabled endpoint: %+v", d)
		}
	}

	// Deleting an endpoint takes its deliveries and attempts along.
	if err := s.DeleteWebhookEndpoint(ctx, "wh_a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWebhookEndpoint(ctx, "wh_a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.WebhookDeliveryByID(ctx, first.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delivery after delete: %v", err)
	}
	if err := s.RecordWebhookAttempt(ctx, &WebhookAttempt{DeliveryID: first.ID, Attempt: 3, At: now}, DeliveryFailed, time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("attempt of a deleted delivery: %v", err)
	}
	eps = nil
	all, _ := s.WebhookEndpoints(ctx)
	for _, e := range all {
		eps = append(eps, e.ID)
	}
	if !slices.Equal(eps, []string{"wh_b", "wh_off", "wh_new"}) {
		t.Fatalf("endpoints after delete: %v", eps)
	}
	if ev, err := s.WebhookEventByID(ctx, "evt_1"); err != nil || string(ev.Payload) != `{"id":"evt_1"}` || ev.OnceKey != "session.ended:s_1" {
		t.Fatalf("event = %+v, %v", ev, err)
	}
}

// TestDueScanUsesEndpointIndex: the scheduler's search for each endpoint's
// next due delivery, run every second, looks it up in the endpoint's own
// part of an index. Without it, an endpoint disabled with a backlog of
// 100,000 pending deliveries made every pass walk that backlog once per
// other endpoint (a third of a second, holding the database).
func TestDueScanUsesEndpointIndex(t *testing.T) {
	s := openTest(t)
	rows, err := s.db.QueryContext(context.Background(),
		"EXPLAIN QUERY PLAN SELECT "+webhookDeliveryColumns+webhookDeliveryFrom+nextDueQuery(" AND w.id NOT IN (?)"),
		DeliveryPending, 0, "wh_busy")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := "SEARCH x USING INDEX webhook_deliveries_endpoint_due (endpoint_id=? AND state=? AND next_attempt_at<?)"
	if !slices.Contains(plan, want) {
		t.Errorf("query plan:\n%s\nwant the step %q", strings.Join(plan, "\n"), want)
	}
}

// TestEndedSessionsWithoutEvent: the sessions that ended in the window
// asked for and have no session.ended event are found, the longest ended
// first; one with its event stored, one still going on, and ones that
// ended outside the window are not.
func TestEndedSessionsWithoutEvent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tech := technician(t, s, "tina", now.Add(-48*time.Hour))
	for i, ended := range map[string]time.Duration{
		"s_day_old": -25 * time.Hour, "s_hour": -time.Hour, "s_two_min": -2 * time.Minute, "s_sent": -time.Hour,
		"s_just_now": -30 * time.Second, "s_live": 0,
	} {
		sess := &Session{ID: i, CodeHash: i, CodeExpiresAt: now.Add(time.Hour), CreatedBy: tech.ID, State: StateWaiting, CreatedAt: now.Add(-30 * time.Hour)}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if ended != 0 {
			if err := s.EndSession(ctx, i, "technician", "ended", now.Add(ended)); err != nil {
				t.Fatal(err)
			}
		}
	}
	ev := &WebhookEvent{ID: "evt_1", Type: "session.ended", Session: "s_sent", OnceKey: "session.ended:s_sent", Payload: []byte("{}"), CreatedAt: now.Add(-time.Hour)}
	if _, _, err := s.AddWebhookEvent(ctx, ev, now.Add(-time.Hour), func() string { return "dlv_1" }); err != nil {
		t.Fatal(err)
	}
	got, err := s.EndedSessionsWithoutEvent(ctx, "session.ended", now.Add(-24*time.Hour), now.Add(-time.Minute))
	if err != nil || !slices.Equal(got, []string{"s_hour", "s_two_min"}) {
		t.Fatalf("sessions ended without session.ended = %v, %v; want [s_hour s_two_min]", got, err)
	}
}

// TestPruneWebhookHistory: deliveries done (succeeded or failed) before the
// cut-off go, with their attempts, and then the events older than it that
// nothing refers to any more. A pending delivery stays however old, and so
// does its event; so does what changed after the cut-off.
func TestPruneWebhookHistory(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cut := now.Add(-30 * 24 * time.Hour)
	admin := technician(t, s, "ada", cut.Add(-time.Hour))
	ep := &WebhookEndpoint{ID: "wh_a", URL: "https://a.example/hook", Secret: "whsec_a", Events: []string{"session.created"}, CreatedBy: admin.ID, CreatedAt: cut.Add(-time.Hour)}
	if err := s.CreateWebhookEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	for id, at := range map[string]time.Time{"evt_old": cut.Add(-time.Hour), "evt_pending": cut.Add(-time.Hour), "evt_lone": cut.Add(-time.Hour), "evt_new": cut.Add(time.Hour)} {
		if _, _, err := s.AddWebhookEvent(ctx, &WebhookEvent{ID: id, Type: "session.created", Payload: []byte("{}"), CreatedAt: at}, at, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []struct {
		id, event, state string
		last             time.Time // of its attempt
	}{
		{"dlv_succeeded", "evt_old", DeliverySucceeded, cut.Add(-time.Minute)},
		{"dlv_failed", "evt_old", DeliveryFailed, cut.Add(-time.Minute)},
		{"dlv_pending", "evt_pending", DeliveryPending, cut.Add(-time.Minute)},
		{"dlv_late", "evt_pending", DeliveryFailed, cut.Add(time.Minute)}, // made before the cut-off, failed after
		{"dlv_new", "evt_new", DeliverySucceeded, cut.Add(2 * time.Hour)},
	} {
		created := cut.Add(-time.Hour)
		if err := s.AddWebhookDelivery(ctx, &WebhookDelivery{ID: d.id, EndpointID: ep.ID, EventID: d.event, State: DeliveryPending,
			NextAttemptAt: created, CreatedAt: created, UpdatedAt: created}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordWebhookAttempt(ctx, &WebhookAttempt{DeliveryID: d.id, Attempt: 1, At: d.last}, d.state, d.last.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}

	deliveries, events, err := s.PruneWebhookHistory(ctx, cut)
	if err != nil || deliveries != 2 || events != 2 {
		t.Fatalf("pruned %d deliveries and %d events (%v), want 2 and 2", deliveries, events, err)
	}
	list, _ := s.WebhookDeliveries(ctx, ep.ID, WebhookDeliveryFilter{Limit: 10})
	var left []string
	for _, d := range list {
		left = append(left, d.ID)
	}
	slices.Sort(left)
	if want := []string{"dlv_late", "dlv_new", "dlv_pending"}; !slices.Equal(left, want) {
		t.Errorf("deliveries left %v, want %v", left, want)
	}
	attempts, _ := s.WebhookAttempts(ctx, []string{"dlv_succeeded", "dlv_failed", "dlv_pending"})
	if len(attempts["dlv_succeeded"]) != 0 || len(attempts["dlv_failed"]) != 0 || len(attempts["dlv_pending"]) != 1 {
		t.Errorf("attempts left %v", attempts)
	}
	for id, kept := range map[string]bool{"evt_old": false, "evt_lone": false, "evt_pending": true, "evt_new": true} {
		if _, err := s.WebhookEventByID(ctx, id); (err == nil) != kept {
			t.Errorf("event %s: %v, want kept %v", id, err, kept)
		}
	}
}
