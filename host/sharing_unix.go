//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// sharing marks this computer's screen as shared by this host while it
// runs, so that another host sharing it too can be told of: the user who
// ends one must not read that nothing is shared while the other goes on.
// Each host holds a shared lock on a file of the user's, named after the
// display; one that can take it whole knows no other host holds it.
type sharing struct{ f *os.File }

// startSharing takes the mark; alone says whether no other host of this
// user shares the display. Without a place for the mark, it has none and
// says the host is alone.
func startSharing(display string) (s sharing, alone bool) {
	dir, uid := os.Getenv("XDG_RUNTIME_DIR"), os.Getuid()
	if dir == "" {
		dir = os.TempDir()
	}
	name := fmt.Sprintf("tether-host-%d-%s.lock", uid, strings.Map(func(r rune) rune {
		if r == '/' || r == ':' {
			return '_'
		}
		return r
	}, display))
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return sharing{}, true
	}
	alone = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return sharing{}, true
	}
	return sharing{f}, alone
}

// stop gives the mark up, and says whether another host still shares the
// display.
func (s sharing) stop() (others bool) {
	if s.f == nil {
		return false
	}
	defer s.f.Close()
	// From shared to whole fails, without waiting, while another holds it.
	return unix.Flock(int(s.f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil
}
