package relay

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"

	"github.com/tether-support/tether/internal/protocol"
)

// transfer hashes the file passing through a files channel, so that the
// audit trail holds the SHA-256 of what the broker relayed next to the one
// the host reports. Only a whole file counts: a transfer resumed from an
// offset began earlier, perhaps on another channel.
type transfer struct {
	mu    sync.Mutex
	dir   string    // whose bytes are hashed: upload (viewer's) or download (host's)
	hash  hash.Hash // nil while no transfer is under way
	bytes int64
}

// start begins hashing a transfer in direction dir.
func (t *transfer) start(dir string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dir, t.hash, t.bytes = dir, sha256.New(), 0
}

// add hashes data relayed in direction dir.
func (t *transfer) add(dir string, data []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hash != nil && t.dir == dir {
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

// follow notes what one file message says about the transfer under way.
func (t *transfer) follow(msg protocol.FileMessage) {
	switch msg.Type {
	case protocol.FileReady:
		t.start(protocol.DirectionUpload)
	case protocol.FileMeta:
		t.start(protocol.DirectionDownload)
	case protocol.FilePut, protocol.FileGet, protocol.FileCancel, protocol.FileError:
		t.finish(-1)
	}
}
