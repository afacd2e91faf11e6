//go:build !(linux || freebsd || openbsd || netbsd)

package capture

import (
	"fmt"

	"github.com/kbinani/screenshot"
)

func checkPortable(display int) error { return checkIndex(display) }

// Displays lists the monitors kbinani/screenshot sees, in its order; the
// first is the one it calls main, which is the primary one on Windows and
// macOS.
func Displays() ([]Display, error) {
	xgbMu.Lock()
	defer xgbMu.Unlock()
	n := screenshot.NumActiveDisplays()
	if n == 0 {
		return nil, fmt.Errorf("list monitors: screenshot finds none: %w", ErrNoDisplay)
	}
	list := make([]Display, n)
	for i := range list {
		b := screenshot.GetDisplayBounds(i)
		list[i] = Display{Index: i, Name: fmt.Sprintf("Display %d", i+1), X: b.Min.X, Y: b.Min.Y, Width: b.Dx(), Height: b.Dy(), Primary: i == 0}
	}
	return list, nil
}

// Reachable reports whether there is still a display to capture.
func Reachable() error {
	_, err := Displays()
	return err
}
