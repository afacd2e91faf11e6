//go:build !(linux || freebsd || openbsd || netbsd)

package input

import (
	"errors"
	"log/slog"
)

// openDevices: elsewhere robotgo moves the pointer, and keys go by
// character.
func openDevices(*slog.Logger) (pointer, keyboard, error) {
	return nil, nil, errors.New("faking input by XTest needs X11")
}
