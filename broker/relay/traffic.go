package relay

import "sync/atomic"

// Traffic counts the bytes relays receive to pass on, from users'
// computers and from technicians, by channel, for the broker's metrics.
// One Traffic serves every session; the zero value is ready.
type Traffic struct {
	VideoFromHosts                       atomic.Uint64 // RTP, headers included
	FilesFromHosts, FilesFromViewers     atomic.Uint64
	ShellFromHosts, ShellFromViewers     atomic.Uint64
	ControlFromHosts, ControlFromViewers atomic.Uint64 // input, control and clipboard
}
