package record

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Archive files.
const (
	ManifestFile  = "manifest.json"
	SignatureFile = "manifest.sig"
	Format        = "tether-archive/1"
)

// Archive states.
const (
	StateRecording  = "recording"  // the broker is writing it
	StateComplete   = "complete"   // the session ended and every part is sealed
	StateIncomplete = "incomplete" // the broker stopped mid-session; sealed parts are intact
	StateFailed     = "failed"     // writing failed (disk full, permission denied); the session was ended
)

// Part kinds.
const (
	KindVideo  = "video"
	KindEvents = "events"
	KindShell  = "shell"
)

// Manifest describes an archive: its parts with their SHA-256, and what the
// session was. manifest.sig holds the broker's Ed25519 signature over the
// exact bytes of manifest.json.
type Manifest struct {
	Format     string    `json:"format"`
	Session    string    `json:"session"`
	Ticket     string    `json:"ticket,omitempty"`
	Technician string    `json:"technician,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	SealedAt   time.Time `json:"sealed_at"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	State      string    `json:"state"`
	Note       string    `json:"note,omitempty"`
	// Parts lists each file with the length and hash of its sealed prefix:
	// bytes written after the last seal (a crash) are not covered.
	Parts []Part `json:"parts"`
	// Video counts frames: relayed by the broker, written to the archive,
	// and dropped (with why).
	Video VideoStats `json:"video"`
	// Counts is the number of events of each type in events.jsonl.
	Counts map[string]int64 `json:"counts"`
	// EventsLost counts the events and terminal output, InputCountsLost
	// the input events counted, that the writer could not take in time (a disk
	// that stalled for over a second): they are missing, and a
	// recording.gap event marks when.
	EventsLost      int64 `json:"events_lost,omitempty"`
	InputCountsLost int64 `json:"input_counts_lost,omitempty"`
	// Encrypted says the parts are encrypted at rest (hashes cover the
	// encrypted bytes, so verifying needs no key).
	Encrypted bool   `json:"encrypted,omitempty"`
	PublicKey string `json:"public_key"` // base64 Ed25519 key of the signer

	// SHA256 is the hex SHA-256 of manifest.json as read or written: the
	// broker keeps the final one, and an earlier seal put back in its
	// place (with the parts cut to it) does not pass for the archive.
	SHA256 string `json:"-"`
}

// Part is one file of an archive.
type Part struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Video segments: where the segment starts on the session's timeline,
	// how long it lasts, and its frames.
	StartMS    int64 `json:"start_ms,omitempty"`
	DurationMS int64 `json:"duration_ms,omitempty"`
	Frames     int64 `json:"frames,omitempty"`
	Width      int   `json:"width,omitempty"`
	Height     int   `json:"height,omitempty"`
	// Events: lines sealed and the hash of the last one.
	Lines int64  `json:"lines,omitempty"`
	Head  string `json:"head,omitempty"`
	// Shells: the channel and who opened it.
	Channel string `json:"channel,omitempty"`
	Viewer  string `json:"viewer,omitempty"`
	Open    bool   `json:"open,omitempty"` // still being written at the seal
}

// VideoStats counts the video frames of a session.
type VideoStats struct {
	Relayed       int64 `json:"relayed"`
	Written       int64 `json:"written"`
	BeforeKey     int64 `json:"before_keyframe"` // frames nobody could decode yet (no keyframe)
	Lost          int64 `json:"lost"`            // frames missing packets
	AfterLoss     int64 `json:"after_loss"`      // frames built on a lost one, before the next keyframe: they would play wrong
	QueueOverflow int64 `json:"queue_overflow"`  // packets the recorder could not keep up with, or frames past a full segment
}

// writeManifest writes manifest.json and manifest.sig atomically: a crash
// leaves the previous pair or the new one, each consistent.
func writeManifest(dir string, m *Manifest, key ed25519.PrivateKey) error {
	m.PublicKey = base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	data = append(data, '\n')
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(key, data)) + "\n"
	// The signature goes first: a manifest is only trusted with its own.
	if err := writeAtomic(dir, SignatureFile+".new", []byte(sig)); err != nil {
		return err
	}
	if err := writeAtomic(dir, ManifestFile+".new", data); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, SignatureFile+".new"), filepath.Join(dir, SignatureFile)); err != nil {
		return fmt.Errorf("seal manifest: %w", err)
	}
	// Before the new manifest takes its name, everything it names must be
	// on disk under theirs: the parts made since the last seal (a sealed
	// video segment, a new transcript, the event log of a new archive)
	// and its signature. Otherwise a power cut could keep a manifest that
	// lists a part the directory lost, or that its signature does not
	// match.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("seal manifest: %w", err)
	}
	if err := os.Rename(filepath.Join(dir, ManifestFile+".new"), filepath.Join(dir, ManifestFile)); err != nil {
		return fmt.Errorf("seal manifest: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("seal manifest: %w", err)
	}
	m.SHA256 = sha256Hex(data)
	return nil
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func writeAtomic(dir, name string, data []byte) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(filepath.Join(dir, name)) // its room, on a full disk
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// syncDir puts the entries made in dir, or removed from it, on disk: a
// file created, linked or renamed into a directory, or a directory
// removed from it, can be lost (or come back) after a power cut until its
// directory is synced, however well the file's own bytes were. It is a
// variable so that tests can see where the recorder syncs.
var syncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some systems and file systems cannot sync a directory (EINVAL,
	// ENOTSUP); they keep its entries as they keep everything else.
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	return err
}

// withoutPath returns err with the paths of the files it names left out,
// for what reaches people who must not learn where the server keeps its
// files (API clients, through a verify report or an archive's note):
// "read manifest: open /var/lib/tether/recordings/s_x/manifest.json:
// permission denied" becomes "read manifest: permission denied".
// errors.Is and errors.As see the cause as before; the broker's log keeps
// the whole of it.
func withoutPath(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch pe := e.(type) {
		case *fs.PathError:
			msg = strings.Replace(msg, pe.Error(), pe.Err.Error(), 1)
		case *os.LinkError:
			msg = strings.Replace(msg, pe.Error(), pe.Err.Error(), 1)
		}
	}
	if msg == err.Error() {
		return err
	}
	return &pathlessError{msg: msg, err: err}
}

type pathlessError struct {
	msg string
	err error
}

func (e *pathlessError) Error() string { return e.msg }
func (e *pathlessError) Unwrap() error { return e.err }

// ReadManifest reads an archive's manifest without checking it.
func ReadManifest(dir string) (*Manifest, []byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, data, fmt.Errorf("manifest.json is not valid JSON: %w", err)
	}
	m.SHA256 = sha256Hex(data)
	return &m, data, nil
}

// hashPrefix returns the SHA-256 of the first n bytes of a file.
func hashPrefix(path string, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	got, err := io.Copy(h, io.LimitReader(f, n))
	if err != nil {
		return "", err
	}
	if got != n {
		return "", fmt.Errorf("%w: %d bytes, the manifest seals %d", errTruncated, got, n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

var errTruncated = errors.New("file is shorter than sealed")

// fileHash returns the size and SHA-256 of a whole file.
func fileHash(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
