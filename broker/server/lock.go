package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/tether-support/tether/broker/record"
)

// lockDataDir makes sure one broker at a time uses dir: a second one would
// end the first one's live sessions as interrupted and mark its recordings
// incomplete. The lock goes with the process, however it ends.
func lockDataDir(dir string) (*os.File, error) {
	return lockDir(dir, "data directory", "-data")
}

// lockRecordingsDir makes sure one broker at a time writes archives in dir,
// even brokers with data directories of their own: a second one would
// reseal the first one's live recordings as incomplete, with its own key.
func lockRecordingsDir(dir string) (*os.File, error) {
	// Say it cannot be written in before the lock file fails to open.
	if err := record.CheckDir(dir); err != nil {
		return nil, err
	}
	return lockDir(dir, "recordings directory", "-recordings")
}

// lockDir holds broker.lock in dir, which what names to the operator; flag
// is how to give the broker a directory of its own.
func lockDir(dir, what, flag string) (*os.File, error) {
	path := filepath.Join(dir, "broker.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", what, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid, _ := os.ReadFile(path)
			if p := strings.TrimSpace(string(pid)); p != "" {
				return nil, fmt.Errorf("%s %s is in use by another broker (process %s); stop it or give this one its own %s", what, dir, p, flag)
			}
			return nil, fmt.Errorf("%s %s is in use by another broker; stop it or give this one its own %s", what, dir, flag)
		}
		return nil, fmt.Errorf("lock %s: %w", what, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
