package files

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// openLock opens the partial file at path for its lock, creating it when
// create says so. The handle lets others read, write and delete, as
// os.OpenFile would not: the upload writes through a handle of its own,
// and the owner removes the file before it lets go of the lock.
func openLock(path string, create bool) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	disposition := uint32(windows.OPEN_EXISTING)
	if create {
		disposition = windows.OPEN_ALWAYS
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, disposition, windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

// tryLock locks f without waiting. Windows locks are mandatory, so the
// lock is on one byte far past the end of any file, which no read or
// write touches; like flock it belongs to the handle and goes when the
// host dies.
func tryLock(f *os.File) error {
	ol := windows.Overlapped{Offset: 0xffffffff, OffsetHigh: 0x7fffffff}
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION):
		return errLocked
	default:
		return fmt.Errorf("%w: %v", errNoLocks, err)
	}
}
