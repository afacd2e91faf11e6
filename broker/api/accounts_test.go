package api

import (
	"net/http"
	"testing"
)

// TestTurnOffTwoFactorWhenOff: asking to turn off two-factor
// authentication on an account that does not use it is answered that it
// is not on, not that the code given is wrong, which sends the user
// looking for a code they never had.
func TestTurnOffTwoFactorWhenOff(t *testing.T) {
	b := newTestBroker(t)
	_, key := b.user("tina", "technician")
	status, out := b.call("DELETE", "/api/v1/me/totp", key, map[string]any{"password": testPassword, "code": "123456"})
	e, _ := out["error"].(map[string]any)
	if status != http.StatusConflict || e["code"] != "totp_not_enabled" {
		t.Fatalf("turning off two-factor that is not on: %d %v, want 409 totp_not_enabled", status, out)
	}
}
