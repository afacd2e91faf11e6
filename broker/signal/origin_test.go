package signal

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/auth"
)

// TestViewerOtherSiteKeepsNoLoginAlive: a page on another site that opens
// the viewer WebSocket, the technician's cookie riding along, is refused
// before the cookie is looked at. Otherwise each attempt would count as
// the technician's use of the console, and a page left open in some tab
// would keep their login from ever going idle.
func TestViewerOtherSiteKeepsNoLoginAlive(t *testing.T) {
	b := newTestHub(t)
	cookie := b.login("alice", "technician")
	for _, origin := range []string{"https://evil.example", "null"} {
		b.clock.Add(20 * time.Minute) // under the idle timeout of 30
		_, resp, err := b.tryDial("/ws/viewer", http.Header{"Origin": {origin}, "Cookie": {cookie.String()}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a page of %s opened a viewer WebSocket: %v, %v", origin, err, resp)
		}
	}
	r := httptest.NewRequest("GET", "/ws/viewer", nil)
	r.AddCookie(cookie)
	if _, err := b.auth.Authenticate(r); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("a login unused for 40 minutes, but for other sites' requests, still works: %v", err)
	}
}
