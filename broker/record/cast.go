package record

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"
)

// castWriter writes one shell as an asciicast v2 file: a header line, then
// one [seconds, code, data] line per output ("o"), input ("i") or resize
// ("r") event. Terminal bytes are split wherever the PTY read them, so an
// incomplete UTF-8 sequence at the end of a chunk waits for the next one.
type castWriter struct {
	f       *os.File
	start   time.Time
	pending [2][]byte // incomplete UTF-8 tails: output, input
	size    int64
	sum     hash.Hash
	closed  bool
	enc     *partCipher
}

type castHeader struct {
	Version   int               `json:"version"`
	Width     int               `json:"width"`
	Height    int               `json:"height"`
	Timestamp int64             `json:"timestamp"`
	Title     string            `json:"title,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
}

func createCast(path string, start time.Time, cols, rows int, title string, key []byte) (*castWriter, error) {
	enc, err := newPartCipher(key, filepath.Base(path))
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create shell transcript: %w", err)
	}
	c := &castWriter{f: f, start: start, sum: sha256.New(), enc: enc}
	if cols <= 0 || rows <= 0 {
		cols, rows = 80, 24
	}
	hdr, _ := json.Marshal(castHeader{Version: 2, Width: cols, Height: rows, Timestamp: start.Unix(), Title: title, Env: map[string]string{"TERM": "xterm-256color"}})
	if err := c.writeLine(hdr); err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

func (c *castWriter) writeLine(b []byte) error {
	b = append(b, '\n')
	if c.enc != nil {
		b = c.enc.seal(b)
	}
	// As in the event log, a line counts only once it is in the file
	// whole: a torn one (the disk full) is cut off, or the seal of the
	// failure would cover it, and the player could not read the
	// transcript at all.
	if n, err := c.f.Write(b); err != nil {
		if n > 0 {
			c.f.Truncate(c.size)
		}
		return fmt.Errorf("write shell transcript: %w", err)
	}
	c.size += int64(len(b))
	c.sum.Write(b)
	return nil
}

// release closes the file of a transcript whose recording failed, writing
// nothing more to it.
func (c *castWriter) release() {
	if !c.closed {
		c.closed = true
		c.f.Close()
	}
}

func (c *castWriter) event(at time.Time, code string, data string) error {
	t := at.Sub(c.start).Seconds()
	if t < 0 {
		t = 0
	}
	line, err := json.Marshal([]any{json.Number(fmt.Sprintf("%.6f", t)), code, data})
	if err != nil {
		return err
	}
	return c.writeLine(line)
}

// data records terminal bytes: output from the host, or input typed.
func (c *castWriter) data(at time.Time, fromHost bool, b []byte) error {
	i, code := 0, "o"
	if !fromHost {
		i, code = 1, "i"
	}
	buf := append(c.pending[i], b...)
	// Keep back an incomplete trailing sequence (at most 3 bytes).
	cut := len(buf)
	for k := 1; k <= 3 && k <= len(buf); k++ {
		r := buf[len(buf)-k]
		if r < 0x80 { // ASCII: nothing incomplete
			break
		}
		if r >= 0xC0 { // a lead byte: complete only if the whole rune is there
			if !utf8.FullRune(buf[len(buf)-k:]) {
				cut = len(buf) - k
			}
			break
		}
	}
	c.pending[i] = append([]byte(nil), buf[cut:]...)
	if cut == 0 {
		return nil
	}
	// Invalid sequences become U+FFFD: asciicast carries text.
	return c.event(at, code, string([]rune(string(buf[:cut]))))
}

func (c *castWriter) resize(at time.Time, cols, rows int) error {
	return c.event(at, "r", fmt.Sprintf("%dx%d", cols, rows))
}

func (c *castWriter) sealed() (int64, string) { return c.size, hex.EncodeToString(c.sum.Sum(nil)) }

func (c *castWriter) close(at time.Time) error {
	if c.closed {
		return nil
	}
	c.closed = true
	var err error
	for i, p := range c.pending {
		if len(p) > 0 {
			err = c.event(at, [2]string{"o", "i"}[i], string([]rune(string(p))))
		}
	}
	if serr := c.f.Sync(); err == nil {
		err = serr
	}
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	return err
}
