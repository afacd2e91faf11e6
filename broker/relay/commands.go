package relay

import (
	"strings"
	"sync"
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
//
// A line typed while the host says its terminal does not show input (a
// password prompt) is not a command and is not reported. The host says
// so after the prompt, or at the latest when the line's first keystroke
// reaches it, so a line is hidden if any of it was typed while, or
// before, the host said so.
type commandLine struct {
	mu     sync.Mutex // feed and setHidden come from the two sides' channels
	buf    []byte
	esc    int  // 0 outside an escape sequence, 1 after ESC, 2 inside CSI or SS3
	hidden bool // the terminal does not show what is typed
	secret bool // the line being typed was typed, at least in part, unseen
}

// setHidden notes whether the terminal shows what is typed. Hiding covers
// the line already begun; showing again starts afresh only with the next
// line.
func (c *commandLine) setHidden(hidden bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hidden = hidden
	if hidden || len(c.buf) == 0 {
		c.secret = hidden
	}
}

// isHidden reports whether the terminal does not show what is typed now.
func (c *commandLine) isHidden() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hidden
}

// feed takes keystrokes and calls done with every command they complete.
func (c *commandLine) feed(data []byte, done func(command string)) {
	c.mu.Lock()
	var commands []string
	defer func() {
		c.mu.Unlock()
		for _, cmd := range commands {
			done(cmd)
		}
	}()
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
			if cmd := strings.TrimSpace(strings.ToValidUTF8(string(c.buf), "")); cmd != "" && !c.secret {
				commands = append(commands, cmd)
			}
			c.buf = c.buf[:0]
			c.secret = c.hidden
		case b == 0x7f || b == 0x08: // Backspace
			if len(c.buf) > 0 {
				_, n := utf8.DecodeLastRune(c.buf)
				c.buf = c.buf[:len(c.buf)-n]
			}
		case b == 0x03 || b == 0x15: // Ctrl+C, Ctrl+U
			c.buf = c.buf[:0]
			c.secret = c.hidden
		case b < 0x20:
			// Tab and other control keys: their effect is not known here.
		case len(c.buf) < maxCommand:
			c.buf = append(c.buf, b)
			c.secret = c.secret || c.hidden
		}
	}
}
