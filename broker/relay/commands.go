package relay

import (
	"strings"
	"unicode/utf8"
)

// maxCommand bounds a rebuilt command line, in bytes.
const maxCommand = 512

// commandLine rebuilds the commands a technician types into a shell from
// the keystrokes the relay forwards, for the audit trail and the ticket:
// printable characters add up, Backspace takes the last one away, Enter
// ends the command, Ctrl+C and Ctrl+U drop it. Escape sequences (arrow and
// function keys) and other control keys are skipped, so a line edited with
// the cursor or completed with Tab reads as typed, not as run. It is a
// record of what was typed, not a security boundary.
type commandLine struct {
	buf []byte
	esc int // 0 outside an escape sequence, 1 after ESC, 2 inside CSI or SS3
}

// feed takes keystrokes and calls done with every command they complete.
func (c *commandLine) feed(data []byte, done func(command string)) {
	for _, b := range data {
		switch {
		case c.esc == 1:
			c.esc = 0
			if b == '[' || b == 'O' {
				c.esc = 2
			}
		case c.esc == 2:
			if b >= 0x40 && b <= 0x7e { // the final byte
				c.esc = 0
			}
		case b == 0x1b:
			c.esc = 1
		case b == '\r' || b == '\n':
			if cmd := strings.TrimSpace(strings.ToValidUTF8(string(c.buf), "")); cmd != "" {
				done(cmd)
			}
			c.buf = c.buf[:0]
		case b == 0x7f || b == 0x08: // Backspace
			if len(c.buf) > 0 {
				_, n := utf8.DecodeLastRune(c.buf)
				c.buf = c.buf[:len(c.buf)-n]
			}
		case b == 0x03 || b == 0x15: // Ctrl+C, Ctrl+U
			c.buf = c.buf[:0]
		case b < 0x20:
			// Tab and other control keys: their effect is not known here.
		case len(c.buf) < maxCommand:
			c.buf = append(c.buf, b)
		}
	}
}
