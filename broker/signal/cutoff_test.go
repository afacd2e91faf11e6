package signal

import (
	"sync"
	"testing"

	"github.com/tether-support/tether/internal/protocol"
)

// TestCutOffHostToldFirst: a connection the broker cuts off (its account
// disabled, its key revoked) is gone for the user's computer before the
// technician hears of it. Otherwise the connection they open next could
// reach the user's computer while the cut one still seemed to be there,
// and be let in with what the user had allowed it.
func TestCutOffHostToldFirst(t *testing.T) {
	b := newTestHub(t)
	sess, u, host := b.hostFor(protocol.PermView)
	viewer := b.joinAs(u, sess)
	req := next[protocol.ConsentRequest](t, host, protocol.TypeConsentRequest)
	b.send(host, protocol.TypeConsentAnswer, sess.ID, protocol.ConsentAnswer{ID: req.ID, Granted: []string{protocol.PermView}, Reason: "granted"})
	for p := next[protocol.Permissions](t, viewer, protocol.TypePermissions); p.Pending || len(p.Granted) == 0; {
		p = next[protocol.Permissions](t, viewer, protocol.TypePermissions)
	}

	// The technician's connection is slow to take what it is sent (a write
	// to it is under way): the user's computer hears at once all the same.
	b.hub.mu.Lock()
	var tech *conn
	for c := range b.hub.live[sess.ID].viewers {
		tech = c
	}
	b.hub.mu.Unlock()
	tech.writeMu.Lock()
	unlock := sync.OnceFunc(tech.writeMu.Unlock)
	defer unlock()
	go b.hub.DisconnectUser(u.ID, "An administrator disabled your account.")
	left := next[protocol.ViewerLeft](t, host, protocol.TypeViewerLeft)
	unlock()
	if left.Viewer != req.Viewer.ID || !left.CutOff {
		t.Fatalf("the host was told %+v, want %s cut off", left, req.Viewer.ID)
	}
	if ended := next[protocol.Ended](t, viewer, protocol.TypeEnded); ended.Scope != protocol.ScopeConnection {
		t.Fatalf("the technician was told %+v", ended)
	}
}
