//go:build !(linux || freebsd || openbsd || netbsd)

package input

import "errors"

// openPointer: elsewhere robotgo moves the pointer.
func openPointer() (pointer, error) {
	return nil, errors.New("moving the pointer by XTest needs X11")
}
