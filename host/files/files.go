// Package files serves the technician's file transfers on the user's
// machine: uploads land in a visible inbox folder (never overwriting a
// file), downloads and listings stay inside the folder the policy shares
// (the user's home by default). Every transfer is SHA-256 verified end to
// end and can resume after a dropped connection; refusals say why.
package files

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/reserve"
	"github.com/tether-support/tether/internal/rtc"
)

// DefaultMaxSize bounds one transfer unless the policy says otherwise.
const DefaultMaxSize = 4 << 30

// Progress reports a transfer to the user's front end.
type Progress struct {
	Name      string
	Direction string // protocol.DirectionUpload or DirectionDownload
	Done      int64
	Total     int64
	Finished  bool
	Err       error  // set when the transfer failed or was refused
	Path      string // where a received file was saved, once Finished
	// Source is where a file sent to the technician is on this computer:
	// the user learns which file left, not only its name.
	Source string
}

// Config configures a Server.
type Config struct {
	// Root is the folder the technician may browse and fetch from.
	Root string
	// Inbox is where uploaded files land; it is created when missing.
	Inbox string
	// CheckInbox has New refuse an inbox that could not take a file. The
	// user's default one is not checked: a home that cannot take it still
	// shares the screen, and says why at the first upload.
	CheckInbox bool
	// MaxSize bounds one transfer in bytes.
	MaxSize int64
	Logger  *slog.Logger
	// OnProgress, when set, is told of each transfer's progress.
	OnProgress func(Progress)
}

// Server serves the files channels of one session.
type Server struct {
	cfg  Config
	root *os.Root

	mu       sync.Mutex
	channels map[*channel]struct{}
	partials map[string]*partial // partial uploads this server owns, removed at the end of its session

	// room is held from an upload's look at the free space until it is
	// under way, so that two starting at once each count the other.
	room sync.Mutex
}

// claimPartial picks the partial file for an upload of the content sha and
// size, and locks it: the one a dropped transfer of the same content left
// (or a host that stopped, adopted at New), unless another transfer is
// writing it now (two technicians sending the same tool) or another
// session holds it, which gets a file of its own.
func (s *Server) claimPartial(inbox, sha string, size int64) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	base := fmt.Sprintf("%s%s-%d", partialPrefix, sha[:16], size)
	for n := 1; n < 1000; n++ {
		path := filepath.Join(inbox, base+partialSuffix)
		if n > 1 {
			path = filepath.Join(inbox, fmt.Sprintf("%s-%d%s", base, n, partialSuffix))
		}
		if p, ok := s.partials[path]; ok {
			if p.writing {
				continue
			}
			p.writing = true
			return path, nil
		}
		lock, err := lockPartial(path, true)
		switch {
		case errors.Is(err, errLocked), errors.Is(err, errNotRegular):
			continue
		case errors.Is(err, errNoLocks):
			// Whose it is cannot be told: it is written as it always
			// was, and never taken for a leftover.
			lock = nil
		case err != nil:
			return "", err
		}
		s.partials[path] = &partial{lock: lock, writing: true}
		return path, nil
	}
	return "", fmt.Errorf("too many transfers of %s at once", base)
}

// keepPartial keeps a partial upload no transfer writes now, for a resume
// within the session.
func (s *Server) keepPartial(path string) {
	s.mu.Lock()
	if p, ok := s.partials[path]; ok {
		p.writing = false
	}
	s.mu.Unlock()
}

// removePartial deletes a partial upload and forgets it; one the server
// no longer owns is left alone, as another session may hold it by now.
func (s *Server) removePartial(path string) {
	s.mu.Lock()
	p, ok := s.partials[path]
	delete(s.partials, path)
	s.mu.Unlock()
	if ok {
		p.remove(path)
	}
}

// openPartial opens the partial file claimPartial gave, which is there
// by then, for the upload to write. Its name may have been replaced since
// (a partial file kept for a resume waits for minutes) by whoever else can
// write to the inbox: a symbolic link to another of the user's files, or
// to one they do not have yet, is not followed to read, cut short, write
// or create that file; the file opened must be the one the server holds.
func (s *Server) openPartial(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	p := s.partials[path]
	s.mu.Unlock()
	opened, err1 := f.Stat()
	var held fs.FileInfo
	var err2 error
	if p != nil && p.lock != nil {
		held, err2 = p.lock.Stat()
	} else {
		held, err2 = os.Lstat(path)
	}
	if err := errors.Join(err1, err2); err != nil {
		f.Close()
		return nil, err
	}
	if !os.SameFile(opened, held) || !opened.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s was replaced by another file or a link while the upload waited", filepath.Base(path))
	}
	return f, nil
}

// RootError is New's error when the folder to share cannot be opened.
type RootError struct {
	Root string
	Err  error
}

func (e *RootError) Error() string { return "open shared folder: " + e.Err.Error() }
func (e *RootError) Unwrap() error { return e.Err }

// InboxError is New's error when files sent to the user could not be
// saved in the inbox: it, or the nearest folder above it that exists (it
// is made at the first upload), is not a folder, or may not be written.
type InboxError struct {
	Inbox string
	Err   error
}

func (e *InboxError) Error() string { return "folder for received files: " + e.Err.Error() }
func (e *InboxError) Unwrap() error { return e.Err }

// ErrNotFolder is why an inbox that is a file cannot be used.
var ErrNotFolder = errors.New("not a folder")

// checkInbox finds what would keep an upload from being saved in dir:
// before the code is used, not at the technician's first upload.
func checkInbox(dir string) error {
	p := dir
	st, err := os.Stat(p)
	for errors.Is(err, fs.ErrNotExist) && filepath.Dir(p) != p {
		p = filepath.Dir(p)
		st, err = os.Stat(p)
	}
	switch {
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%s: %w", p, ErrNotFolder)
	}
	return reserve.Writable(p)
}

// New opens the shared root and checks the inbox.
func New(cfg Config) (*Server, error) {
	if cfg.Root == "" || cfg.Inbox == "" {
		return nil, errors.New("files: missing root or inbox folder")
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnProgress == nil {
		cfg.OnProgress = func(Progress) {}
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, &RootError{Root: cfg.Root, Err: err}
	}
	if cfg.CheckInbox {
		if err := checkInbox(cfg.Inbox); err != nil {
			root.Close()
			return nil, &InboxError{Inbox: cfg.Inbox, Err: err}
		}
	}
	s := &Server{cfg: cfg, root: root, channels: map[*channel]struct{}{}, partials: map[string]*partial{}}
	s.adoptLeftovers()
	return s, nil
}

// MaxSize is the largest file one transfer takes.
func (s *Server) MaxSize() int64 { return s.cfg.MaxSize }

// Close cancels every transfer, waits for them and releases the root.
func (s *Server) Close() error {
	s.mu.Lock()
	chs := slices.Collect(maps.Keys(s.channels))
	s.mu.Unlock()
	s.stopAll(errEnded, true)
	for _, c := range chs {
		c.wg.Wait()
	}
	// A resume is possible only within the session: nothing half-sent
	// outlives it.
	s.removePartials()
	return s.root.Close()
}

// removePartials deletes every partial upload of the session.
func (s *Server) removePartials() {
	s.mu.Lock()
	left := s.partials
	s.partials = map[string]*partial{}
	s.mu.Unlock()
	for path, p := range left {
		p.remove(path)
	}
}

// CancelAll stops every transfer under way and closes the channels: the
// user took file transfer back. Partial uploads are removed.
func (s *Server) CancelAll() { s.stopAll(errRevoked, true) }

// PauseAll stops every transfer under way and closes the channels: the
// user paused the session. A pause is a moment's break, not a refusal:
// partial uploads are kept, as after a dropped connection, so that a file
// sent to the user carries on where it stopped once they resume. Taking
// file transfer back or the end of the session removes them.
func (s *Server) PauseAll() { s.stopAll(errPaused, false) }

// EndAll stops every transfer under way and closes the channels: the
// session is ending. The host calls it before it tells the broker, whose
// closing the channels would otherwise tell the user that the technician
// left. Close follows.
func (s *Server) EndAll() { s.stopAll(errEnded, true) }

// StopDisallowed stops the transfers of the technicians who may no longer
// transfer files, and closes their channels: they left. Their downloads
// stop here, whatever the broker does; a partial upload is kept for their
// return, as after a dropped connection.
func (s *Server) StopDisallowed() {
	s.mu.Lock()
	chs := slices.Collect(maps.Keys(s.channels))
	s.mu.Unlock()
	for _, c := range chs {
		if !c.allowed() {
			c.abort(false, errLeft)
			c.dc.Close()
		}
	}
}

// stopAll stops every transfer under way for the reason why, told to the
// user, and closes the channels; partial uploads are removed if remove
// says so, and kept for a resume within the session otherwise.
func (s *Server) stopAll(why error, remove bool) {
	s.mu.Lock()
	chs := slices.Collect(maps.Keys(s.channels))
	s.mu.Unlock()
	for _, c := range chs {
		c.abort(remove, why)
		c.dc.Close()
	}
	if remove {
		// Including those a chunk that met the revoke first set aside
		// for a resume, and those a pause or a dropped connection kept.
		s.removePartials()
	}
}

// Attach serves a files channel the broker opened. allowed reports whether
// the technician behind it may transfer files now.
func (s *Server) Attach(dc *webrtc.DataChannel, allowed func() bool) {
	c := &channel{s: s, dc: dc, flow: rtc.NewFlow(dc, rtc.BulkMarks), allowed: allowed}
	s.mu.Lock()
	s.channels[c] = struct{}{}
	s.mu.Unlock()
	dc.OnMessage(c.onMessage)
	dc.OnClose(func() {
		// A dropped connection keeps a partial upload for a resume.
		c.abort(false, errLeft)
		s.mu.Lock()
		delete(s.channels, c)
		s.mu.Unlock()
	})
}

// channel is one technician's files channel: one transfer at a time.
type channel struct {
	s       *Server
	dc      *webrtc.DataChannel
	flow    *rtc.Flow
	allowed func() bool

	mu sync.Mutex
	up *upload
	// aside is an upload stopped by a chunk that came when the technician
	// no longer had file transfer: the user is told why once it is known
	// (abort), by the channel closing (they left) or by CancelAll or
	// PauseAll.
	aside *upload
	down  context.CancelCauseFunc // the cause is why, for the user
	wg    sync.WaitGroup
}

// upload is an upload under way.
type upload struct {
	name, rel, sha string
	size, got      int64
	partial        string
	f              *os.File
	h              hash.Hash
	reported       int64 // the last progress told the user
	acked          int64 // the last progress told the technician
	progress       bool  // the technician asked to be told progress
}

// ackEvery is how often, in bytes, an upload's progress is told to the
// technician who asked.
const ackEvery = 128 << 10

func (c *channel) onMessage(m webrtc.DataChannelMessage) {
	if !c.allowed() {
		// A partial upload stays: a revoke removes it (CancelAll), a
		// technician who left may come back and resume, and so may one
		// whose user paused, once they resume (PauseAll). Chunks still
		// on their way are dropped without a word each. A download stops
		// when the channel closes or CancelAll or PauseAll comes, which
		// follow.
		if c.setAside() || m.IsString {
			c.fail(protocol.FileMessage{}, protocol.FileErrDenied, "The user has not allowed file transfer.")
		}
		return
	}
	if !m.IsString {
		c.onChunk(m.Data)
		return
	}
	msg, err := protocol.DecodeFile(m.Data)
	if err != nil {
		c.fail(protocol.FileMessage{}, protocol.FileErrProtocol, err.Error())
		return
	}
	c.mu.Lock()
	busy := c.up != nil || c.down != nil
	c.mu.Unlock()
	if busy && msg.Type != protocol.FileCancel {
		c.fail(msg, protocol.FileErrBusy, "Another transfer is under way; cancel it or wait.")
		return
	}
	switch msg.Type {
	case protocol.FileList:
		c.list(msg.Path)
	case protocol.FilePut:
		c.startUpload(msg)
	case protocol.FileGet:
		c.startDownload(msg)
	case protocol.FileCancel:
		c.abort(true, errCancelled)
		// The confirmation comes after the last chunk of a download, so
		// that what follows it on the channel answers the next request.
		c.wg.Wait()
		c.send(protocol.FileMessage{Type: protocol.FileError, Code: protocol.FileErrCancelled, Message: "The transfer was cancelled."})
	default:
		// Unknown types are skipped: a newer console may send more.
	}
}

// send writes a JSON message; failures mean the channel is gone.
func (c *channel) send(m protocol.FileMessage) {
	data, err := protocol.EncodeFile(m)
	if err != nil {
		c.s.cfg.Logger.Warn("file message not sent", "type", m.Type, "err", err)
		return
	}
	if err := c.flow.SendText(context.Background(), string(data)); err != nil {
		c.s.cfg.Logger.Debug("file message not sent", "type", m.Type, "err", err)
	}
}

// fail refuses or ends a transfer with code and a message for people; the
// message carries what the transfer was, for the audit trail.
func (c *channel) fail(about protocol.FileMessage, code, message string) {
	out := protocol.FileMessage{Type: protocol.FileError, Code: code, Message: truncate(message),
		Name: about.Name, Path: about.Path, Size: about.Size, SHA256: about.SHA256, Direction: about.Direction}
	c.s.cfg.Logger.Warn("file transfer refused", "code", code, "name", about.Name, "path", about.Path, "reason", message)
	if about.Direction != "" {
		// A fetch refused before a file was found has only the path the
		// technician asked for, which may be anything.
		name := protocol.Printable(cmp.Or(about.Name, about.Path))
		c.s.cfg.OnProgress(Progress{Name: name, Direction: about.Direction, Total: about.Size, Finished: true, Err: errors.New(message)})
	}
	c.send(out)
}

func truncate(s string) string {
	if len(s) > protocol.MaxTextSize {
		return s[:protocol.MaxTextSize]
	}
	return s
}

// Why a transfer stopped half way, as the user reads it after
// "Receiving report.pdf: stopped: ".
var (
	errLeft      = errors.New("the technician left or lost the connection")
	errCancelled = errors.New("the technician cancelled it")
	errRevoked   = errors.New("you took back file transfer")
	errPaused    = errors.New("you paused the session; once you resume, the technician can carry on from where it stopped")
	errEnded     = errors.New("the session ended")
)

// abort stops the transfer under way, and says whether there was one; a
// cancelled upload's partial file is removed, a dropped or paused one is
// kept for a resume within this session. The user is told why, unless why
// is nil (they are told otherwise); an upload set aside earlier is told
// now.
func (c *channel) abort(cancel bool, why error) bool {
	c.mu.Lock()
	up, down := c.up, c.down
	c.up, c.down = nil, nil
	var aside *upload
	if why != nil {
		aside, c.aside = c.aside, nil
	}
	var upGot, asideGot int64 // written under c.mu (onChunk)
	if up != nil {
		upGot = up.got
	}
	if aside != nil {
		asideGot = aside.got
	}
	c.mu.Unlock()
	if down != nil {
		down(why)
	}
	if up != nil {
		up.f.Close()
		if cancel {
			c.s.removePartial(up.partial)
		} else {
			c.s.keepPartial(up.partial)
		}
		if why != nil {
			c.s.cfg.OnProgress(Progress{Name: up.name, Direction: protocol.DirectionUpload, Done: upGot, Total: up.size, Finished: true, Err: why})
		}
	}
	if aside != nil {
		if cancel {
			c.s.removePartial(aside.partial)
		}
		c.s.cfg.OnProgress(Progress{Name: aside.name, Direction: protocol.DirectionUpload, Done: asideGot, Total: aside.size, Finished: true, Err: why})
	}
	return up != nil || down != nil
}

// setAside stops the upload under way, keeping its partial file, when a
// chunk comes while the technician may not transfer files: they left, or
// the user took file transfer back or paused, and which is not known yet.
// It says whether there was one.
func (c *channel) setAside() bool {
	c.mu.Lock()
	up := c.up
	c.up = nil
	if up != nil {
		c.aside = up
	}
	c.mu.Unlock()
	if up != nil {
		up.f.Close()
		c.s.keepPartial(up.partial)
	}
	return up != nil
}

// list sends the entries of a folder under the root.
func (c *channel) list(p string) {
	about := protocol.FileMessage{Path: p}
	rel, err := cleanRel(p)
	if err != nil {
		c.fail(about, protocol.FileErrPath, err.Error())
		return
	}
	dir, err := c.s.root.Open(rel)
	if err != nil {
		code, msg := openError(rel, err)
		c.fail(about, code, msg)
		return
	}
	defer dir.Close()
	// All of it is read and sorted before a long folder is cut short, so
	// that what is shown is the start of the list the technician sees
	// (folders first, then by name), not whichever entries the disk
	// happened to give first.
	ents, err := dir.ReadDir(-1)
	if err != nil {
		c.fail(about, protocol.FileErrNotFound, fmt.Sprintf("%s is not a folder you can list.", rel))
		return
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int {
		return byKind(a.IsDir(), a.Name(), b.IsDir(), b.Name())
	})
	out := protocol.FileMessage{Type: protocol.FileListing, Path: rel, Entries: []protocol.FileEntry{}}
	all := ents
	if len(ents) > protocol.MaxListing {
		out.Message = fmt.Sprintf("This folder holds %d entries; only the first %d are shown (folders first, then by name).", len(ents), protocol.MaxListing)
		ents = ents[:protocol.MaxListing]
	}
	unlisted := 0 // names that cannot be sent: the technician is told how many
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue // gone since the folder was read
		}
		if !listable(e.Name()) {
			unlisted++
			continue
		}
		entry := protocol.FileEntry{Name: e.Name(), Size: info.Size(), Mtime: info.ModTime().Unix(), Kind: kind(info.Mode())}
		entry.Dir = info.IsDir()
		if info.Mode()&fs.ModeSymlink != 0 {
			// A link to a folder inside the shared folder opens as that
			// folder (a Documents linked elsewhere in the home); one that
			// leads outside stays a link, and following it is refused.
			if target, err := c.s.root.Stat(path.Join(rel, e.Name())); err == nil && target.IsDir() {
				entry.Dir = true
			}
		}
		out.Entries = append(out.Entries, entry)
	}
	slices.SortFunc(out.Entries, func(a, b protocol.FileEntry) int {
		return byKind(a.Dir, a.Name, b.Dir, b.Name)
	})
	// The listing is one message, and a message over the limit is never
	// delivered: a thousand names near the longest allowed (more once
	// escaped) do not fit, so the list is cut where they stop fitting.
	size := 0
	for i, e := range out.Entries {
		b, _ := json.Marshal(e)
		size += len(b) + 1
		if size > listingBudget {
			out.Entries = out.Entries[:i]
			out.Message = fmt.Sprintf("This folder holds %d entries; only the first %d are shown (folders first, then by name).", len(all), i)
			break
		}
	}
	if unlisted > 0 {
		note := fmt.Sprintf("%d entries are not shown: their names hold line breaks, control characters or bytes that are not text.", unlisted)
		if unlisted == 1 {
			note = "1 entry is not shown: its name holds line breaks, control characters or bytes that are not text."
		}
		out.Message = strings.TrimSpace(out.Message + " " + note)
	}
	c.send(out)
}

// listingBudget bounds the entries of one listing once encoded, leaving
// room in the message for its path (escaped, at worst six bytes for one)
// and its sentence.
const listingBudget = protocol.MaxFileMessage - 6*protocol.MaxPath - 2*protocol.MaxTextSize

// byKind orders folders first, then by name whatever the case.
func byKind(aDir bool, a string, bDir bool, b string) int {
	if aDir != bDir {
		if aDir {
			return -1
		}
		return 1
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

// listable leaves out names the wire cannot carry (not UTF-8, control
// characters).
func listable(n string) bool { return CheckName(n, "linux") == nil }

func kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "link"
	default:
		return "special"
	}
}

// openError sorts an error from the root into a code and a sentence.
func openError(rel string, err error) (string, string) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return protocol.FileErrNotFound, fmt.Sprintf("%s does not exist.", rel)
	case errors.Is(err, fs.ErrPermission):
		return protocol.FileErrIO, fmt.Sprintf("%s cannot be read: permission denied.", rel)
	case strings.Contains(err.Error(), "escapes"):
		// os.Root's only word for a symlink (or ..) leading outside.
		return protocol.FileErrPath, fmt.Sprintf("%s leads outside the shared folder.", rel)
	default:
		return protocol.FileErrIO, fmt.Sprintf("%s cannot be opened: %v", rel, errors.Unwrap(err))
	}
}

// startUpload checks an upload and tells the technician where to start:
// a partial file of the same content left by a dropped connection resumes.
func (c *channel) startUpload(msg protocol.FileMessage) {
	msg.Direction = protocol.DirectionUpload
	if err := CheckUploadName(msg.Name, runtime.GOOS); err != nil {
		c.fail(msg, protocol.FileErrPath, err.Error())
		return
	}
	if msg.Size > c.s.cfg.MaxSize {
		c.fail(msg, protocol.FileErrTooLarge, fmt.Sprintf("%s is %d bytes; the limit is %d.", msg.Name, msg.Size, c.s.cfg.MaxSize))
		return
	}
	inbox := c.s.cfg.Inbox
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		c.fail(msg, protocol.FileErrIO, fmt.Sprintf("The folder for received files cannot be created: %v", err))
		return
	}
	if saved, ok := alreadyThere(inbox, msg.Name, msg.Size, msg.SHA256); ok {
		// Answered as an upload resumed with every byte in place.
		c.s.cfg.Logger.Info("file already received", "name", filepath.Base(saved), "size", msg.Size, "sha256", msg.SHA256)
		c.send(protocol.FileMessage{Type: protocol.FileReady, Name: msg.Name, Size: msg.Size, Offset: msg.Size, Direction: protocol.DirectionUpload, Progress: msg.Progress})
		c.s.cfg.OnProgress(Progress{Name: filepath.Base(saved), Direction: protocol.DirectionUpload, Done: msg.Size, Total: msg.Size, Finished: true, Path: saved})
		c.send(protocol.FileMessage{Type: protocol.FileDone, Name: filepath.Base(saved), Path: saved, Size: msg.Size, SHA256: msg.SHA256, Direction: protocol.DirectionUpload})
		return
	}
	partial, err := c.s.claimPartial(inbox, msg.SHA256, msg.Size)
	if err != nil {
		c.fail(msg, protocol.FileErrIO, fmt.Sprintf("Cannot write to the folder for received files: %v", err))
		return
	}
	if err := takesName(inbox, msg.Name); err != nil {
		c.s.removePartial(partial)
		c.fail(msg, protocol.FileErrPath, err.Error())
		return
	}
	f, err := c.s.openPartial(partial)
	if err != nil {
		c.s.removePartial(partial)
		c.fail(msg, protocol.FileErrIO, fmt.Sprintf("Cannot write to the folder for received files: %v", err))
		return
	}
	h := sha256.New()
	have, err := io.Copy(h, f) // a previous attempt's bytes count, and are hashed again
	if err != nil || have > msg.Size {
		f.Truncate(0)
		f.Seek(0, io.SeekStart)
		h.Reset()
		have = 0
	}
	c.s.room.Lock()
	if free := freeSpace(inbox); free >= 0 {
		// Files on their way from other technicians have their room kept.
		coming := c.s.incoming(c)
		if need := msg.Size - have; need > 0 && need > free-coming {
			f.Close()
			c.s.removePartial(partial)
			why := fmt.Sprintf("The user's disk is full: %s needs %d bytes, %d are free.", msg.Name, msg.Size-have, free)
			if coming > 0 {
				why = fmt.Sprintf("The user's disk is full: %s needs %d bytes, and of the %d free, files already on their way need %d.", msg.Name, msg.Size-have, free, coming)
			}
			c.s.room.Unlock()
			c.fail(msg, protocol.FileErrNoSpace, why)
			return
		}
	}
	up := &upload{name: msg.Name, sha: msg.SHA256, size: msg.Size, got: have, partial: partial, f: f, h: h, reported: have, acked: have, progress: msg.Progress}
	c.mu.Lock()
	c.up = up
	c.mu.Unlock()
	c.s.room.Unlock()
	c.s.cfg.Logger.Info("receiving a file", "name", msg.Name, "size", msg.Size, "resume_at", have)
	c.send(protocol.FileMessage{Type: protocol.FileReady, Name: msg.Name, Size: msg.Size, Offset: have, Direction: protocol.DirectionUpload, Progress: msg.Progress})
	c.s.cfg.OnProgress(Progress{Name: up.name, Direction: protocol.DirectionUpload, Done: have, Total: up.size})
	if have == msg.Size {
		c.finishUpload(up)
	}
}

// incoming is how many bytes the uploads under way on channels other than
// except have still to write.
func (s *Server) incoming(except *channel) int64 {
	s.mu.Lock()
	chs := make([]*channel, 0, len(s.channels))
	for c := range s.channels {
		if c != except {
			chs = append(chs, c)
		}
	}
	s.mu.Unlock()
	var n int64
	for _, c := range chs {
		c.mu.Lock()
		if c.up != nil {
			n += c.up.size - c.up.got
		}
		c.mu.Unlock()
	}
	return n
}

// onChunk writes one chunk of the upload under way.
func (c *channel) onChunk(data []byte) {
	c.mu.Lock()
	up := c.up
	c.mu.Unlock()
	about := protocol.FileMessage{Direction: protocol.DirectionUpload}
	if up == nil {
		// Chunks already on the way when an upload failed or was
		// cancelled: the technician has been told once.
		return
	}
	about.Name, about.Size, about.SHA256 = up.name, up.size, up.sha
	if up.got+int64(len(data)) > up.size {
		c.abort(true, nil)
		c.fail(about, protocol.FileErrProtocol, fmt.Sprintf("%s is longer than the %d bytes announced.", up.name, up.size))
		return
	}
	if _, err := up.f.Write(data); err != nil {
		c.abort(true, nil) // the partial file is removed: nothing half-written stays
		if errors.Is(err, syscall.ENOSPC) {
			c.fail(about, protocol.FileErrNoSpace, fmt.Sprintf("The user's disk is full; %s was not saved.", up.name))
		} else {
			c.fail(about, protocol.FileErrIO, fmt.Sprintf("Writing %s failed: %v", up.name, err))
		}
		return
	}
	up.h.Write(data)
	c.mu.Lock() // incoming reads it
	up.got += int64(len(data))
	c.mu.Unlock()
	if up.got-up.reported >= up.size/100+1 {
		up.reported = up.got
		c.s.cfg.OnProgress(Progress{Name: up.name, Direction: protocol.DirectionUpload, Done: up.got, Total: up.size})
	}
	if up.progress && up.got-up.acked >= ackEvery && up.got < up.size {
		up.acked = up.got
		c.send(protocol.FileMessage{Type: protocol.FileProgress, Offset: up.got})
	}
	if up.got == up.size {
		c.finishUpload(up)
	}
}

// finishUpload verifies the hash and moves the file into place under a
// name no existing file has.
func (c *channel) finishUpload(up *upload) {
	c.mu.Lock()
	c.up = nil
	c.mu.Unlock()
	about := protocol.FileMessage{Name: up.name, Size: up.size, SHA256: up.sha, Direction: protocol.DirectionUpload}
	written, statErr := up.f.Stat()
	syncErr := up.f.Sync()
	closeErr := up.f.Close()
	if err := errors.Join(statErr, syncErr, closeErr); err != nil {
		c.s.removePartial(up.partial)
		code := protocol.FileErrIO
		if errors.Is(err, syscall.ENOSPC) {
			code = protocol.FileErrNoSpace
		}
		c.fail(about, code, fmt.Sprintf("Saving %s failed: %v", up.name, err))
		return
	}
	if got := hex.EncodeToString(up.h.Sum(nil)); got != up.sha {
		c.s.removePartial(up.partial)
		c.fail(about, protocol.FileErrHash, fmt.Sprintf("%s arrived damaged (SHA-256 %s, expected %s) and was discarded.", up.name, got, up.sha))
		return
	}
	final, err := place(up.partial, c.s.cfg.Inbox, up.name, written)
	if err == nil {
		// The partial name is gone; the lock, on the saved file now,
		// goes too.
		c.s.mu.Lock()
		p, ok := c.s.partials[up.partial]
		delete(c.s.partials, up.partial)
		c.s.mu.Unlock()
		if ok {
			p.release()
		}
	}
	if err != nil {
		c.s.removePartial(up.partial)
		c.fail(about, protocol.FileErrIO, fmt.Sprintf("Saving %s failed: %v", up.name, err))
		return
	}
	about.Type, about.Path = protocol.FileDone, final
	about.Name = filepath.Base(final)
	c.s.cfg.Logger.Info("file received", "name", about.Name, "size", up.size, "sha256", up.sha)
	c.s.cfg.OnProgress(Progress{Name: about.Name, Direction: protocol.DirectionUpload, Done: up.size, Total: up.size, Finished: true, Path: final})
	c.send(about)
}

// place gives partial its final name in dir: name, or "name (2).ext" and
// so on when that exists, for an upload never replaces a file. The name
// is taken with a hard link, which fails if it exists: no race with the
// user. File systems without hard links (FAT32 and exFAT on USB sticks,
// some SMB shares) refuse the link, each with an error of its own; there
// the name is reserved, and the partial file renamed onto it
// (reserve.Rename). The partial file's lock, held on the open file, stays
// on it until finishUpload lets go. A host that dies between the two steps
// leaves the name empty and the upload whole in its partial file, which the
// next session adopts: sent again, the file is saved beside it as
// "name (2).ext".
//
// What is saved must be the file written and verified: whoever else can
// write to the folder could have put another file, or a link, in the
// partial file's place meanwhile. written is that file; a file placed
// that is not it is removed again, and the upload fails.
func place(partial, dir, name string, written fs.FileInfo) (string, error) {
	swapped := fmt.Errorf("%s was replaced by another file or a link as it arrived: it was not saved", name)
	if st, err := os.Lstat(partial); err != nil || !os.SameFile(st, written) {
		return "", swapped
	}
	link := true
	for i := 1; i <= maxCopies; i++ {
		target := filepath.Join(dir, numbered(name, i))
		if link {
			err := os.Link(partial, target)
			if err == nil {
				if st, err := os.Lstat(target); err != nil || !os.SameFile(st, written) {
					os.Remove(target)
					return "", swapped
				}
				os.Remove(partial) // the name stays on the linked file
				return target, nil
			}
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			// Any other refusal is taken for a file system without
			// links: reserve.Rename is as safe, and fails in turn, with
			// its own cause, where the folder cannot be written at all.
			link = false
		}
		err := reserve.Rename(partial, target)
		if err == nil {
			if st, err := os.Lstat(target); err != nil || !os.SameFile(st, written) {
				os.Remove(target)
				return "", swapped
			}
			return target, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("too many files named %s", name)
}

// alreadyThere finds the file an earlier upload of the same content saved
// in inbox: name, or one of its numbered copies, of the same size and
// SHA-256. Sending it again (a tool sent twice, a push stopped after its
// last bytes had left, which the host completed) then saves no second
// copy.
func alreadyThere(inbox, name string, size int64, sha string) (string, bool) {
	for i := 1; i <= maxCopies; i++ {
		p := filepath.Join(inbox, numbered(name, i))
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return "", false // copies are numbered from the first gap
		}
		if err == nil && st.Mode().IsRegular() && st.Size() == size && hashIs(p, st, sha) {
			return p, true
		}
	}
	return "", false
}

// hashIs reports whether the file at p, still the one st describes (not
// replaced by a link meanwhile), has the SHA-256 sha.
func hashIs(p string, st fs.FileInfo, sha string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	if fst, err := f.Stat(); err != nil || !os.SameFile(st, fst) {
		return false
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == sha
}

// takesName checks that the inbox's file system takes name, before any of
// the file is sent: one on a FAT USB stick refuses "backup:2024.txt",
// which is a valid name where the host runs, and an encrypted home names
// shorter than 255 bytes. It makes the file, and removes it at once.
func takesName(inbox, name string) error {
	f, err := os.OpenFile(filepath.Join(inbox, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		f.Close()
		return os.Remove(filepath.Join(inbox, name))
	case errors.Is(err, fs.ErrExist):
		return nil // taken: the file gets a number
	default:
		return fmt.Errorf("The user's disk does not take the name %q (%v). Rename the file and send it again.", name, errors.Unwrap(err))
	}
}

// maxCopies bounds the files of one name an inbox holds: name.ext, then
// "name (2).ext" up to "name (999).ext".
const maxCopies = 999

// numbered returns the nth file of name in an inbox: name itself for the
// first, "stem (n).ext" after. The stem is shortened, on a character
// boundary, when the number would make the name longer than the user's
// computer allows: a name that long was accepted, and the file it came
// with has all arrived.
func numbered(name string, n int) string {
	if n == 1 {
		return name
	}
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	if stem == "" {
		stem, ext = name, ""
	}
	suffix := fmt.Sprintf(" (%d)", n)
	if len(stem)+len(suffix)+len(ext) > protocol.MaxName {
		keep := protocol.MaxName - len(suffix) - len(ext)
		if keep < 1 { // an extension too long to keep
			stem, ext = name, ""
			keep = protocol.MaxName - len(suffix)
		}
		for keep > 0 && !utf8.RuneStart(stem[keep]) {
			keep--
		}
		stem = stem[:keep]
	}
	return stem + suffix + ext
}

// startDownload opens a regular file under the root and streams it from
// the offset the technician already has; the hash covers the whole file.
func (c *channel) startDownload(msg protocol.FileMessage) {
	msg.Direction = protocol.DirectionDownload
	rel, err := cleanRel(msg.Path)
	if err != nil {
		c.fail(msg, protocol.FileErrPath, err.Error())
		return
	}
	msg.Name = path.Base(rel)
	info, err := c.s.root.Stat(rel)
	if err != nil {
		code, m := openError(rel, err)
		c.fail(msg, code, m)
		return
	}
	if !info.Mode().IsRegular() {
		what := "a special file (device, pipe or socket)"
		if info.IsDir() {
			what = "a folder"
		}
		c.fail(msg, protocol.FileErrSpecial, fmt.Sprintf("%s is %s; only regular files can be fetched.", rel, what))
		return
	}
	// O_NONBLOCK: a pipe swapped in after the check must not hang the host.
	f, err := c.s.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		code, m := openError(rel, err)
		c.fail(msg, code, m)
		return
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		c.fail(msg, protocol.FileErrSpecial, fmt.Sprintf("%s is not a regular file.", rel))
		return
	} else {
		info = st
	}
	// A hard link is the file itself under a second name, and the other
	// may be anywhere on the disk: ~/shared/notes.txt may be the user's
	// ~/.ssh/id_ed25519, which the shared folder leaves out. Which names a
	// file has cannot be asked, so none with more than one is sent.
	if n := links(f, info); n > 1 {
		f.Close()
		c.fail(msg, protocol.FileErrPath, fmt.Sprintf("%s cannot be fetched: it has %d names on the user's computer (hard links), and the others may be outside the shared folder. Ask the user to copy it into the shared folder, and fetch the copy.", rel, n))
		return
	}
	msg.Size = info.Size()
	if msg.Size > c.s.cfg.MaxSize {
		f.Close()
		c.fail(msg, protocol.FileErrTooLarge, fmt.Sprintf("%s is %d bytes; the limit is %d.", rel, msg.Size, c.s.cfg.MaxSize))
		return
	}
	offset := min(msg.Offset, msg.Size)
	ctx, cancel := context.WithCancelCause(context.Background())
	c.mu.Lock()
	c.down = cancel
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer f.Close()
		defer cancel(nil)
		code, message := c.download(ctx, f, rel, msg.Name, msg.Size, offset)
		// The channel is free again before the technician hears the end.
		c.mu.Lock()
		current := c.down != nil
		c.down = nil
		c.mu.Unlock()
		if code != "" && current {
			c.fail(protocol.FileMessage{Name: msg.Name, Path: rel, Size: msg.Size, Direction: protocol.DirectionDownload}, code, message)
		}
	}()
}

// download streams the file; it returns an error code and message when
// the transfer failed, and sends the final done message itself.
func (c *channel) download(ctx context.Context, f *os.File, rel, name string, size, offset int64) (string, string) {
	source := filepath.Join(c.s.cfg.Root, filepath.FromSlash(rel))
	about := protocol.FileMessage{Name: name, Path: rel, Size: size, Direction: protocol.DirectionDownload}
	c.s.cfg.Logger.Info("sending a file", "path", rel, "size", size, "resume_at", offset)
	c.send(protocol.FileMessage{Type: protocol.FileMeta, Name: name, Path: rel, Size: size, Offset: offset, Direction: protocol.DirectionDownload})
	h := sha256.New()
	if _, err := io.CopyN(h, f, offset); err != nil {
		return protocol.FileErrIO, fmt.Sprintf("Reading %s failed: %v", rel, err)
	}
	buf := make([]byte, protocol.FileChunk)
	sent, reported := offset, offset
	for sent < size {
		n, err := io.ReadFull(f, buf[:min(int64(len(buf)), size-sent)])
		if err != nil {
			return protocol.FileErrIO, fmt.Sprintf("Reading %s failed (did it change?): %v", rel, err)
		}
		if err := c.flow.Send(ctx, buf[:n]); err != nil {
			why := context.Cause(ctx)
			if ctx.Err() == nil || why == context.Canceled {
				// The channel failed or closed under it.
				c.s.cfg.Logger.Info("download stopped", "path", rel, "sent", sent, "err", err)
				why = errLeft
			}
			c.s.cfg.OnProgress(Progress{Name: name, Source: source, Direction: protocol.DirectionDownload, Done: sent, Total: size, Finished: true, Err: why})
			return "", ""
		}
		h.Write(buf[:n])
		sent += int64(n)
		if sent-reported >= size/100+1 {
			reported = sent
			c.s.cfg.OnProgress(Progress{Name: name, Source: source, Direction: protocol.DirectionDownload, Done: sent, Total: size})
		}
	}
	about.Type = protocol.FileDone
	about.SHA256 = hex.EncodeToString(h.Sum(nil))
	c.s.cfg.Logger.Info("file sent", "path", rel, "size", size, "sha256", about.SHA256)
	c.s.cfg.OnProgress(Progress{Name: name, Source: source, Direction: protocol.DirectionDownload, Done: size, Total: size, Finished: true})
	c.mu.Lock()
	c.down = nil
	c.mu.Unlock()
	c.send(about)
	return "", ""
}
