package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// File transfer and shell channels. The viewer opens them (not
// negotiated); the broker opens a channel of the same label toward the
// host, with the viewer's id as the channel's protocol string, so that the
// host checks that viewer's own grants.
const (
	ChannelFiles       = "files"  // JSON FileMessage strings plus binary chunks
	ChannelShellPrefix = "shell-" // shell-<n>: raw terminal bytes plus JSON ShellMessage strings
	// ChannelFilesBrowse is a second files channel, alike in every way,
	// on which a viewer lists folders while a transfer holds the first
	// (a channel serves one request at a time).
	ChannelFilesBrowse = "files-browse"
	// MaxShells bounds the shells one viewer may hold open at once.
	MaxShells = 8
)

// File transfer limits.
const (
	// FileChunk is the size of one binary chunk of file data.
	FileChunk = 64 << 10
	// MaxFileMessage bounds one JSON file message (a directory listing).
	MaxFileMessage = 256 << 10
	// MaxListing bounds the entries of one directory listing.
	MaxListing = 1000
	// MaxPath bounds a path, in bytes.
	MaxPath = 4096
	// MaxName bounds one file name on the user's computer, in bytes. A
	// message carries a longer one (up to MaxPath), for the host to refuse
	// it in a sentence the technician reads, not as a broken message.
	MaxName = 255
	// MaxShellMessage bounds one JSON shell control message.
	MaxShellMessage = 256
	// MaxTermSize bounds terminal columns and rows.
	MaxTermSize = 1000
)

// File message types.
const (
	FilePut     = "put"     // viewer → host: upload Name of Size bytes with SHA256
	FileGet     = "get"     // viewer → host: download Path from Offset
	FileList    = "list"    // viewer → host: list the directory Path
	FileCancel  = "cancel"  // viewer → host: abandon the transfer under way
	FileReady   = "ready"   // host → viewer: send the upload's bytes from Offset
	FileMeta    = "meta"    // host → viewer: the download's Name and Size; bytes follow from Offset
	FileListing = "listing" // host → viewer: Entries of Path
	FileDone    = "done"    // host → viewer: the transfer is complete and verified
	// FileProgress (host → viewer) says Offset bytes of the upload are
	// written on the user's computer, when the put asked with Progress:
	// what the technician's side has sent may still be on its way.
	FileProgress = "progress"
	FileError    = "error" // host → viewer: refused or failed, with Code and Message
)

// Upload and download, as audit events say.
const (
	DirectionUpload   = "upload"   // technician → user
	DirectionDownload = "download" // user → technician
)

// File error codes.
const (
	FileErrDenied    = "denied"    // the user has not allowed file transfer
	FileErrPath      = "path"      // traversal, symlink leaving the root, hard link, invalid name
	FileErrNotFound  = "not_found" // no such file or directory
	FileErrSpecial   = "special"   // a device, pipe, socket or other non-regular file
	FileErrTooLarge  = "too_large" // over the size limit
	FileErrNoSpace   = "no_space"  // the disk is full
	FileErrHash      = "hash"      // SHA-256 did not match
	FileErrBusy      = "busy"      // another transfer is under way on this channel
	FileErrCancelled = "cancelled" // the technician cancelled
	FileErrProtocol  = "protocol"  // a message out of order or malformed
	FileErrIO        = "io"        // reading or writing failed
)

// FileEntry is one item of a directory listing.
type FileEntry struct {
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	Dir   bool   `json:"dir,omitempty"`
	Mtime int64  `json:"mtime"` // Unix seconds
	// Kind is "file", "dir", "link" or "special"; only files can be fetched.
	Kind string `json:"kind"`
}

// FileMessage is one JSON message on the files channel.
type FileMessage struct {
	Type      string      `json:"type"`
	Name      string      `json:"name,omitempty"`
	Path      string      `json:"path,omitempty"`
	Size      int64       `json:"size,omitempty"`
	Offset    int64       `json:"offset,omitempty"`
	SHA256    string      `json:"sha256,omitempty"`
	Direction string      `json:"direction,omitempty"`
	Entries   []FileEntry `json:"entries,omitempty"`
	Code      string      `json:"code,omitempty"`
	Message   string      `json:"message,omitempty"`
	// Progress, on a put, asks for FileProgress messages, and on the
	// ready that answers it says they will come (a host that does not
	// know them leaves it out).
	Progress bool `json:"progress,omitempty"`
}

// ErrFileMessage is wrapped by file message errors.
var ErrFileMessage = errors.New("invalid file message")

// DecodeFile parses and checks one JSON file message.
func DecodeFile(b []byte) (FileMessage, error) {
	var m FileMessage
	if len(b) > MaxFileMessage {
		return m, fmt.Errorf("%w: %d bytes, limit %d", ErrFileMessage, len(b), MaxFileMessage)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrFileMessage, err)
	}
	return m, m.validate()
}

// EncodeFile checks and serializes a file message.
func EncodeFile(m FileMessage) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func (m *FileMessage) validate() error {
	switch {
	case m.Type == "" || len(m.Type) > MaxIDSize:
		return fmt.Errorf("%w: bad type", ErrFileMessage)
	case len(m.Name) > MaxPath:
		return fmt.Errorf("%w: name is %d bytes, limit %d", ErrFileMessage, len(m.Name), MaxPath)
	case len(m.Path) > MaxPath:
		return fmt.Errorf("%w: path is %d bytes, limit %d", ErrFileMessage, len(m.Path), MaxPath)
	case !utf8.ValidString(m.Name) || !utf8.ValidString(m.Path):
		return fmt.Errorf("%w: name or path is not UTF-8", ErrFileMessage)
	case m.Size < 0 || m.Offset < 0:
		return fmt.Errorf("%w: negative size or offset", ErrFileMessage)
	case m.SHA256 != "" && !isHex(m.SHA256, 64):
		return fmt.Errorf("%w: sha256 must be 64 hex digits", ErrFileMessage)
	case len(m.Entries) > MaxListing:
		return fmt.Errorf("%w: %d entries, limit %d", ErrFileMessage, len(m.Entries), MaxListing)
	case len(m.Code) > MaxIDSize || len(m.Message) > MaxTextSize || len(m.Direction) > MaxIDSize:
		return fmt.Errorf("%w: code, direction or message too long", ErrFileMessage)
	}
	if m.Type == FilePut && (m.Name == "" || m.SHA256 == "") {
		return fmt.Errorf("%w: put needs a name and a sha256", ErrFileMessage)
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// Shell control message types.
const (
	ShellResize = "resize" // viewer → host: Cols × Rows
	ShellExit   = "exit"   // host → viewer: the shell exited with Code
	// host → viewer: the terminal reads input it does not show (a
	// password prompt), or shows what is typed again. The broker keeps
	// hidden lines out of the audit trail.
	ShellHidden = "input-hidden"
	ShellShown  = "input-shown"
	// viewer → host: the viewer's terminal is behind drawing the output
	// it has, so the host stops reading the shell's output until it
	// catches up: a fast command waits, as in a local terminal, instead
	// of its output piling up (and Ctrl+C taking effect on screen only
	// once the pile is drawn).
	ShellPause  = "pause"
	ShellResume = "resume"
)

// ShellMessage is a JSON control message on a shell channel; binary
// messages on the same channel are raw terminal bytes.
type ShellMessage struct {
	Type string `json:"type"`
	Cols int    `json:"cols,omitempty"`
	Rows int    `json:"rows,omitempty"`
	Code int    `json:"code"`
}

// ErrShellMessage is wrapped by shell message errors.
var ErrShellMessage = errors.New("invalid shell message")

// DecodeShell parses and checks one shell control message.
func DecodeShell(b []byte) (ShellMessage, error) {
	var m ShellMessage
	if len(b) > MaxShellMessage {
		return m, fmt.Errorf("%w: %d bytes, limit %d", ErrShellMessage, len(b), MaxShellMessage)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrShellMessage, err)
	}
	switch m.Type {
	case ShellResize:
		if m.Cols < 1 || m.Rows < 1 || m.Cols > MaxTermSize || m.Rows > MaxTermSize {
			return m, fmt.Errorf("%w: terminal size %dx%d out of range", ErrShellMessage, m.Cols, m.Rows)
		}
	case ShellExit, ShellHidden, ShellShown, ShellPause, ShellResume:
	default:
		if m.Type == "" || len(m.Type) > MaxIDSize {
			return m, fmt.Errorf("%w: bad type", ErrShellMessage)
		}
	}
	return m, nil
}

// EncodeShell serializes a shell control message.
func EncodeShell(m ShellMessage) []byte {
	b, _ := json.Marshal(m)
	return b
}

// FilesChannel reports whether label names a files channel.
func FilesChannel(label string) bool {
	return label == ChannelFiles || label == ChannelFilesBrowse
}

// ShellChannel reports whether label names a shell channel, shell-<n>
// with 1 ≤ n ≤ 99.
func ShellChannel(label string) bool {
	n, ok := strings.CutPrefix(label, ChannelShellPrefix)
	if !ok || n == "" || len(n) > 2 || n[0] == '0' {
		return false
	}
	v, err := strconv.Atoi(n)
	return err == nil && v >= 1
}
