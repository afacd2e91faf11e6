package signal

import (
	"context"
	"testing"

	"github.com/tether-support/tether/internal/protocol"
)

// TestObserverInTwoTabsNamedOnce: a supervisor who watches from two
// connections (two console tabs, say) is one person watching: named
// once, and named until the last of them leaves.
func TestObserverInTwoTabsNamedOnce(t *testing.T) {
	b := newTestHub(t)
	sess, tech, host := b.hostFor()
	sup, err := b.auth.CreateUser(context.Background(), "sue", "correct horse battery", "supervisor")
	if err != nil {
		t.Fatal(err)
	}
	allow := func() {
		t.Helper()
		r := next[protocol.ConsentRequest](t, host, protocol.TypeConsentRequest)
		b.send(host, protocol.TypeConsentAnswer, sess.ID, protocol.ConsentAnswer{ID: r.ID, Granted: r.Permissions, Reason: "granted"})
	}
	tv := b.joinAs(tech, sess)
	allow()
	watching := func() []protocol.Person {
		t.Helper()
		return next[protocol.Observers](t, tv, protocol.TypeObservers).Observers
	}
	if o := watching(); len(o) != 0 {
		t.Fatalf("watching before any supervisor joined: %+v", o)
	}
	first := b.joinAs(sup, sess)
	allow()
	watching()
	second := b.joinAs(sup, sess)
	allow()
	if o := watching(); len(o) != 1 || o[0].Name != "sue" {
		t.Fatalf("watching with sue in two tabs: %+v, want sue once", o)
	}

	second.Close()
	first.Close()
	for o := watching(); len(o) != 0; o = watching() {
		if len(o) != 1 || o[0].Name != "sue" {
			t.Fatalf("watching as sue's tabs close: %+v, want sue once, then no one", o)
		}
	}
}
