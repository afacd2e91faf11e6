package files

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A partial upload belongs to the server that holds its lock, for as long
// as it keeps the file: while it is written and while it is kept for a
// resume. The lock goes with the host's process, so a partial file no
// one can lock was left by a host that is no longer running (killed,
// crashed, the power cut), and one that is locked belongs to a host
// running now, perhaps a second session for the same user, which must
// keep it.
var (
	// errLocked: another server, in this process or another, holds the
	// lock.
	errLocked = errors.New("the partial file is in use by another session")
	// errNoLocks: locks cannot be taken here (the system or the file
	// system has none), so whose the file is cannot be told.
	errNoLocks = errors.New("file locks are not available")
	// errNotRegular: something else than a file has the partial file's
	// name (a pipe put there would hold up the resume's read for ever).
	errNotRegular = errors.New("the partial file's name is taken by something else than a file")
)

// partial is a partial upload a server owns.
type partial struct {
	lock    *os.File // holds the lock; nil where locks are not available
	writing bool     // a transfer writes it now
}

// remove deletes the partial file at path, and only then lets go of its
// lock: whoever takes the lock next finds the file gone (lockPartial
// looks), never a file that is about to be removed under it.
func (p *partial) remove(path string) {
	os.Remove(path)
	p.release()
}

// release lets go of the lock.
func (p *partial) release() {
	if p.lock != nil {
		p.lock.Close()
	}
}

// lockPartial opens the partial file at path, creating it when create says
// so, and locks it without waiting: errLocked says another server holds
// it, errNoLocks that locks cannot be taken here.
func lockPartial(path string, create bool) (*os.File, error) {
	for range 10 {
		f, err := openLock(path, create)
		if err != nil {
			return nil, err
		}
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
			f.Close()
			return nil, errors.Join(errNotRegular, err)
		}
		if err := tryLock(f); err != nil {
			f.Close()
			return nil, err
		}
		// The owner may have removed the file between the open and the
		// lock; the lock is then on a file without a name, and the name
		// may be another file by now.
		opened, err1 := f.Stat()
		named, err2 := os.Lstat(path)
		if err1 == nil && err2 == nil && os.SameFile(opened, named) {
			return f, nil
		}
		f.Close()
		if !create && errors.Is(err2, fs.ErrNotExist) {
			return nil, err2
		}
	}
	return nil, &os.PathError{Op: "lock", Path: path, Err: errors.New("the file keeps being replaced")}
}

// isPartialName reports whether name is one claimPartial gives:
// .tether-<16 hex digits>-<size>.part, or -<size>-<n>.part for a second
// transfer of the same content at once.
func isPartialName(name string) bool {
	mid, ok := strings.CutPrefix(name, partialPrefix)
	if !ok {
		return false
	}
	if mid, ok = strings.CutSuffix(mid, partialSuffix); !ok {
		return false
	}
	parts := strings.Split(mid, "-")
	if len(parts) < 2 || len(parts) > 3 || len(parts[0]) != 16 {
		return false
	}
	for i, p := range parts {
		if p == "" {
			return false
		}
		for _, r := range p {
			switch {
			case r >= '0' && r <= '9':
			case i == 0 && r >= 'a' && r <= 'f':
			default:
				return false
			}
		}
	}
	return true
}

// adoptLeftovers takes as its own every partial file in the inbox that
// no running host holds: a host that died left it. A leftover is adopted
// rather than deleted at once: if the technician sends the same file
// again in this session (the usual thing after the host crashed in the
// middle of it), the upload resumes from it, as after a dropped
// connection; otherwise the end of this session removes it, like any
// partial file of its own. A leftover that is damaged (the power cut
// before the disk had all of it) fails the hash check at its end and is
// discarded then. Called before the server is shared.
func (s *Server) adoptLeftovers() {
	ents, err := os.ReadDir(s.cfg.Inbox)
	if err != nil {
		return // no inbox yet, or none to read: nothing was left in it
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !isPartialName(e.Name()) {
			continue
		}
		path := filepath.Join(s.cfg.Inbox, e.Name())
		lock, err := lockPartial(path, false)
		if err != nil {
			// Another host's, gone already, or whose cannot be told:
			// not this server's to remove.
			continue
		}
		s.partials[path] = &partial{lock: lock}
	}
	if len(s.partials) > 0 {
		s.cfg.Logger.Info("partial uploads left by a host that stopped are kept for a resume until this session ends", "count", len(s.partials))
	}
}
