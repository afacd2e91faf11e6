//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package files

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openLock opens the partial file at path for its lock, creating it when
// create says so.
func openLock(path string, create bool) (*os.File, error) {
	flag := os.O_RDONLY
	if create {
		flag = os.O_RDWR | os.O_CREATE
	}
	return os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
}

// tryLock takes an advisory lock on f without waiting. flock belongs to
// the open file, not the process: two servers in one process exclude each
// other as two hosts do, and the kernel lets go when the host dies.
func tryLock(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EWOULDBLOCK):
		return errLocked
	default:
		return fmt.Errorf("%w: %v", errNoLocks, err)
	}
}
