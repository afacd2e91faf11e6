//go:build !(linux || freebsd || openbsd || netbsd)

package input

import "errors"

// openKeyboard: elsewhere keys go by character through robotgo.
func openKeyboard() (keyboard, error) {
	return nil, errors.New("keys by position need X11")
}
