package signal

import (
	"cmp"
	"slices"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/internal/protocol"
)

// Live observation: a supervisor joins a running session as a viewer who
// can only watch. The user is asked, as for anyone, but only to let them
// see; once they see, every technician in the session is told who is
// watching (the console shows a banner), and the host lists them as
// observers.

// permsFor is what the user is asked to grant v on joining: observers
// only ever watch.
func permsFor(l *live, v *viewer) []string {
	if v.person.Role == auth.RoleSupervisor {
		return []string{protocol.PermView}
	}
	return l.perms
}

// observersLocked lists the supervisors the user lets see, each once
// however many connections (console tabs) they watch from. h.mu is held.
func (l *live) observersLocked() []protocol.Person {
	var watching []*viewer
	for _, v := range l.viewers {
		if v.person.Role == auth.RoleSupervisor && slices.Contains(v.grants, protocol.PermView) {
			watching = append(watching, v)
		}
	}
	// By name, then by connection: the same connection stands for a
	// person each time the list is made.
	slices.SortFunc(watching, func(a, b *viewer) int {
		return cmp.Or(cmp.Compare(a.person.Name, b.person.Name), cmp.Compare(a.person.ID, b.person.ID))
	})
	out := []protocol.Person{}
	seen := map[int64]bool{}
	for _, v := range watching {
		if seen[v.userID] {
			continue
		}
		seen[v.userID] = true
		out = append(out, v.person)
	}
	if len(out) > protocol.MaxObservers {
		out = out[:protocol.MaxObservers]
	}
	return out
}

// announceObservers tells every viewer who is watching read-only. h.mu
// must not be held.
func (h *Hub) announceObservers(l *live) {
	h.mu.Lock()
	if l.ended {
		h.mu.Unlock()
		return
	}
	msg := protocol.Observers{Observers: l.observersLocked()}
	conns := l.viewerList()
	h.mu.Unlock()
	for _, c := range conns {
		c.send(protocol.TypeObservers, l.id, msg)
	}
}
