//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows)

package files

import "os"

// openLock opens the partial file at path, creating it when create says
// so.
func openLock(path string, create bool) (*os.File, error) {
	flag := os.O_RDONLY
	if create {
		flag = os.O_RDWR | os.O_CREATE
	}
	return os.OpenFile(path, flag, 0o600)
}

// tryLock cannot lock here: uploads go on unlocked, and partial files a
// dead host left are never taken for leftovers.
func tryLock(*os.File) error { return errNoLocks }
