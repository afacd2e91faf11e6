package signal

import (
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

// observersLocked lists the supervisors the user lets see. h.mu is held.
func (l *live) observersLocked() []protocol.Person {
	out := []protocol.Person{}
	for _, v := range l.viewers {
		if v.person.Role == auth.RoleSupervisor && slices.Contains(v.grants, protocol.PermView) {
			out = append(out, v.person)
		}
	}
	slices.SortFunc(out, func(a, b protocol.Person) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
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
