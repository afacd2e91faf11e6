// Package launch carries join settings (broker address, support code, CA)
// appended to a host program downloaded from a join page, so that the user
// only has to run it. Executables ignore bytes after their last section;
// the settings sit at the end, followed by their length and a marker.
package launch

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// marker ends a file that carries settings.
const marker = "TETHERJOIN1\n"

// MaxSize bounds the settings a reader accepts, before it allocates.
const MaxSize = 64 << 10

// Settings are what a join page fills in for the user.
type Settings struct {
	Broker string `json:"broker"`
	Code   string `json:"code"`
	// CAPEM is the broker's CA certificate when it uses its own CA.
	CAPEM string `json:"ca_pem,omitempty"`
}

// ErrNone means the file carries no settings.
var ErrNone = errors.New("no join settings")

// Trailer returns the bytes to append to a program for s.
func Trailer(s Settings) ([]byte, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("join settings of %d bytes exceed %d", len(data), MaxSize)
	}
	var buf bytes.Buffer
	buf.Write(data)
	binary.Write(&buf, binary.BigEndian, uint32(len(data)))
	buf.WriteString(marker)
	return buf.Bytes(), nil
}

// Read returns the settings at the end of the file at path, or ErrNone.
func Read(path string) (Settings, error) {
	var s Settings
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return s, err
	}
	tail := int64(4 + len(marker))
	if info.Size() < tail {
		return s, ErrNone
	}
	end := make([]byte, tail)
	if _, err := f.ReadAt(end, info.Size()-tail); err != nil {
		return s, fmt.Errorf("read join settings: %w", err)
	}
	if string(end[4:]) != marker {
		return s, ErrNone
	}
	n := int64(binary.BigEndian.Uint32(end[:4]))
	if n > MaxSize || n > info.Size()-tail {
		return s, fmt.Errorf("join settings of %d bytes: damaged download", n)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(io.NewSectionReader(f, info.Size()-tail-n, n), data); err != nil {
		return s, fmt.Errorf("read join settings: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("join settings: %w", err)
	}
	return s, nil
}
