package record

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"time"
)

// EventsFile is the name of the event log inside an archive.
const EventsFile = "events.jsonl"

// maxEventLine bounds one line of events.jsonl when reading it back.
const maxEventLine = 256 << 10

// Event is one line of events.jsonl. Prev is the SHA-256 of the previous
// line (without its newline), or of the chain's genesis for the first
// line, so that removing, reordering or editing a line breaks the chain.
type Event struct {
	Seq    int64           `json:"seq"`
	T      int64           `json:"t"` // milliseconds since the recording started (monotonic)
	At     time.Time       `json:"at"`
	Type   string          `json:"type"`
	Actor  string          `json:"actor,omitempty"`
	Detail json.RawMessage `json:"detail,omitempty"`
	Prev   string          `json:"prev"`
}

// genesis is the hash the first line chains to: it binds the log to its
// session, so lines cannot be moved between archives.
func genesis(session string) string {
	sum := sha256.Sum256([]byte("tether-archive/1 events " + session))
	return hex.EncodeToString(sum[:])
}

func lineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// eventLog appends chained lines to events.jsonl.
type eventLog struct {
	f    *os.File
	seq  int64
	head string // hash of the last line written
	size int64
	sum  hash.Hash // of every byte written
	enc  *partCipher
}

func createEventLog(path, session string, key []byte) (*eventLog, error) {
	enc, err := newPartCipher(key, EventsFile)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create event log: %w", err)
	}
	return &eventLog{f: f, head: genesis(session), sum: sha256.New(), enc: enc}, nil
}

// append writes one event; the line reaches the file (not only a buffer)
// before append returns, so a crash of the broker loses nothing written.
// A line counts, and the chain moves on, only once it is in the file
// whole: the seal of a log whose write failed (the disk full) must match
// what is there, or verify takes the lines before the failure for altered.
func (l *eventLog) append(e Event) error {
	e.Seq, e.Prev = l.seq+1, l.head
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", e.Type, err)
	}
	out := append(line, '\n')
	if l.enc != nil {
		out = l.enc.seal(out)
	}
	if n, err := l.f.Write(out); err != nil {
		// Cut off a torn line: it gives back the room it took, for the
		// seal of the failure. If that fails too, verify reads a torn
		// end, not a broken chain. (The recording stops: nothing is
		// appended after a failed write.)
		if n > 0 {
			l.f.Truncate(l.size)
		}
		return fmt.Errorf("write event log: %w", err)
	}
	l.seq++
	l.sum.Write(out)
	l.head = lineHash(line)
	l.size += int64(len(out))
	return nil
}

func (l *eventLog) sync() error { return l.f.Sync() }

// part describes what is written so far, for a seal.
func (l *eventLog) part() Part {
	return Part{Name: EventsFile, Kind: KindEvents, Size: l.size, SHA256: hex.EncodeToString(l.sum.Sum(nil)), Lines: l.seq, Head: l.head}
}

func (l *eventLog) close() error {
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// encode chains an event and returns its line with the newline, as append
// writes it (unencrypted).
func (l *eventLog) encode(e Event) []byte {
	l.seq++
	e.Seq, e.Prev = l.seq, l.head
	line, _ := json.Marshal(e)
	l.head = lineHash(line)
	return append(line, '\n')
}

// ChainResult is what checking an event chain found.
type ChainResult struct {
	Lines int64
	Head  string // hash of the last good line
	// GoodBytes is the length of the prefix made of complete, chained lines.
	GoodBytes int64
	// Err names the first line that breaks the chain, if any.
	Err error
	// Partial is true when the file ends in an incomplete line (a crash
	// while it was being written).
	Partial bool
}

// CheckChain reads an event log and checks that every line chains the
// previous one, starting from the session's genesis.
func CheckChain(r io.Reader, session string) ChainResult {
	res := ChainResult{Head: genesis(session)}
	br := bufio.NewReaderSize(r, maxEventLine)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			res.Err = fmt.Errorf("line %d is longer than %d bytes", res.Lines+1, maxEventLine)
			return res
		}
		if err == io.EOF {
			if len(line) > 0 {
				res.Partial = true
			}
			return res
		}
		if err != nil {
			res.Err = fmt.Errorf("read line %d: %w", res.Lines+1, err)
			return res
		}
		body := bytes.TrimSuffix(line, []byte("\n"))
		var e Event
		if err := json.Unmarshal(body, &e); err != nil {
			res.Err = fmt.Errorf("line %d is not a valid event: %v", res.Lines+1, err)
			return res
		}
		if e.Seq != res.Lines+1 {
			res.Err = fmt.Errorf("line %d has sequence number %d", res.Lines+1, e.Seq)
			return res
		}
		if e.Prev != res.Head {
			res.Err = fmt.Errorf("line %d does not chain to line %d (edited, removed or reordered lines)", res.Lines+1, res.Lines)
			return res
		}
		res.Lines++
		res.Head = lineHash(body)
		res.GoodBytes += int64(len(line))
	}
}

// ReadEvents returns the events of a log, stopping at the first bad line.
func ReadEvents(r io.Reader, limit int) ([]Event, error) {
	br := bufio.NewReaderSize(r, maxEventLine)
	var out []Event
	for len(out) < limit {
		line, err := br.ReadSlice('\n')
		if err == io.EOF {
			return out, nil
		}
		if err == bufio.ErrBufferFull {
			return out, fmt.Errorf("event %d is longer than %d bytes", len(out)+1, maxEventLine)
		}
		if err != nil {
			return out, fmt.Errorf("read events: %w", withoutPath(err)) // shown to the player
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return out, fmt.Errorf("event %d: %w", len(out)+1, err)
		}
		out = append(out, e)
	}
	return out, nil
}
