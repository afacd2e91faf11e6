package webhook

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentEditKeepsDisable: one admin disables an endpoint
// while another edits its description; both answer 200, and the endpoint
// ends disabled: the edit, written from the endpoint as it was read, does
// not enable it again (it did in about one round in 200).
func TestConcurrentEditKeepsDisable(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	lost := 0
	const rounds = 1000
	for i := range rounds {
		ep := e.endpoint(t, fmt.Sprintf("http://127.0.0.1:9/hook%d", i), "session.ended")
		off := false
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := e.d.UpdateEndpoint(ctx, ep.ID, EndpointUpdate{Enabled: &off}, e.admin); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			d := fmt.Sprintf("edit %d", i)
			if _, err := e.d.UpdateEndpoint(ctx, ep.ID, EndpointUpdate{Description: &d}, e.admin); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		got, err := e.store.WebhookEndpointByID(ctx, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Enabled {
			lost++
		}
		if err := e.store.DeleteWebhookEndpoint(ctx, ep.ID); err != nil {
			t.Fatal(err)
		}
	}
	if lost > 0 {
		t.Errorf("in %d of %d rounds the endpoint was left enabled after a disable that answered OK", lost, rounds)
	}
}
