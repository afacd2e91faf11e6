package relay

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"

	"github.com/tether-support/tether/internal/protocol"
)

// transfer follows the file passing through a files channel. It hashes
// what passes, so that the audit trail holds the SHA-256 of what the broker
// relayed next to the one the host reports (only a whole file counts: a
// transfer resumed from an offset began earlier, perhaps on another
// channel), and it counts what passes, so that a transfer cut short still
// leaves a trace of how much of the file moved.
type transfer struct {
	mu sync.Mutex
	// about is the host's ready or meta for the transfer under way; its
	// direction says whose bytes are hashed: upload (viewer's) or
	// download (host's).
	about protocol.FileMessage
	hash  hash.Hash // nil while no transfer is under way
	bytes int64
}

// start begins following the transfer the host's ready or meta announced.
func (t *transfer) start(about protocol.FileMessage) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.about, t.hash, t.bytes = about, sha256.New(), 0
}

// add hashes data relayed in direction dir.
func (t *transfer) add(dir string, data []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hash != nil && t.about.Direction == dir {
		t.hash.Write(data)
		t.bytes += int64(len(data))
	}
}

// finish ends the transfer and returns the SHA-256 of what was relayed,
// if the whole file of size bytes passed.
func (t *transfer) finish(size int64) (sum string, whole bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hash != nil && t.bytes == size {
		sum, whole = hex.EncodeToString(t.hash.Sum(nil)), true
	}
	t.hash = nil
	return sum, whole
}

// stop ends a transfer that did not finish, and returns what it was and
// how many bytes of it were relayed; ok is false when none was under way.
func (t *transfer) stop() (about protocol.FileMessage, bytes int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	about, bytes, ok = t.about, t.bytes, t.hash != nil
	t.hash = nil
	return about, bytes, ok
}
