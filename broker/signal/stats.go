package signal

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/tether-support/tether/broker/relay"
)

// Stats is what the hub holds now and what it counted since it started,
// for the broker's metrics.
type Stats struct {
	// Active counts the sessions whose user's computer is connected.
	Active int
	// Hosts and Viewers count the users' computers and the technicians'
	// connections in live sessions.
	Hosts, Viewers int
	// HostsWaiting counts the users' computers that asked for a code and
	// wait for a technician to claim it.
	HostsWaiting int
	// Recording counts the archives being written.
	Recording int
	// Created and Started count sessions given a code and joined by the
	// user's computer.
	Created, Started uint64
	// Ended counts the sessions ended (also those a stopped broker left
	// live, ended as this one starts) by cause (EndCauses).
	Ended map[string]uint64
	// RecordingsFailed counts archives that could not be started or whose
	// writing failed.
	RecordingsFailed uint64
	// Relayed counts the bytes the sessions' relays received to pass on.
	Relayed *relay.Traffic
}

// counters are the hub's counts since it started.
type counters struct {
	created, started, recordingsFailed atomic.Uint64

	mu    sync.Mutex
	ended map[string]uint64 // by cause
}

// count notes an audit event in the counters.
func (c *counters) count(typ string, detail map[string]any) {
	switch typ {
	case "session.created":
		c.created.Add(1)
	case "host.connected":
		c.started.Add(1)
	case "session.ended":
		cause, _ := detail["cause"].(string)
		c.mu.Lock()
		if c.ended == nil {
			c.ended = map[string]uint64{}
		}
		c.ended[cause]++
		c.mu.Unlock()
	case "recording.failed":
		c.recordingsFailed.Add(1)
	}
}

// Stats returns the hub's counts. It takes the hub's locks briefly and
// does no more work than there are live sessions and connections.
func (h *Hub) Stats() Stats {
	s := Stats{
		Created: h.counts.created.Load(), Started: h.counts.started.Load(),
		RecordingsFailed: h.counts.recordingsFailed.Load(),
		Relayed:          &h.traffic,
	}
	h.counts.mu.Lock()
	s.Ended = maps.Clone(h.counts.ended)
	h.counts.mu.Unlock()
	h.mu.Lock()
	for _, l := range h.live {
		if l.host != nil {
			s.Active++
			s.Hosts++
		}
		s.Viewers += len(l.viewers)
	}
	s.HostsWaiting = len(h.pending)
	h.mu.Unlock()
	h.recMu.Lock()
	s.Recording = len(h.recordings)
	h.recMu.Unlock()
	return s
}
