package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockDataDir makes sure one broker at a time uses dir: a second one would
// end the first one's live sessions as interrupted and mark its recordings
// incomplete. The lock goes with the process, however it ends.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "broker.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid, _ := os.ReadFile(path)
			if p := strings.TrimSpace(string(pid)); p != "" {
				return nil, fmt.Errorf("data directory %s is in use by another broker (process %s); stop it or give this one its own -data", dir, p)
			}
			return nil, fmt.Errorf("data directory %s is in use by another broker; stop it or give this one its own -data", dir)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
