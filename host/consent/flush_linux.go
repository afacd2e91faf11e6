package consent

import "golang.org/x/sys/unix"

// discardTypeAhead throws away what was typed on the terminal and not yet
// read: a line without its Enter, held by the terminal.
func (t *Terminal) discardTypeAhead() {
	if t.tty != nil {
		unix.IoctlSetInt(int(t.tty.Fd()), unix.TCFLSH, unix.TCIFLUSH)
	}
}
