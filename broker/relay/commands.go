package relay

import (
	"bytes"
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
//
// Keys typed in a full-screen program (less, vim, top) are not commands
// either: the q that quits less, or a line typed into a file in vim, would
// otherwise read as commands, or run into the next one. Such programs show
// themselves on the terminal's alternate screen, which the host's output
// switches to and back from; the transcript keeps what they were typed.
type commandLine struct {
	mu     sync.Mutex // feed, setHidden and output come from the two sides' channels
	buf    []byte
	esc    int  // 0 outside an escape sequence, 1 after ESC, 2 inside CSI or SS3
	hidden bool // the terminal does not show what is typed
	secret bool // the line being typed was typed, at least in part, unseen

	fullScreen bool   // a full-screen program has the terminal
	outTail    []byte // the output's last escape sequence, while unfinished
}

// maxScreenSwitch bounds the unfinished escape sequence output keeps back:
// the switches are short.
const maxScreenSwitch = 16

// output follows the host's output for the switches to the alternate
// screen (ESC [ ? 1049 h, or 1047 or 47) and back (… l). Either switch
// drops what was typed but not entered: it went to the other screen.
func (c *commandLine) output(data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := data
	if c.outTail != nil {
		buf = append(c.outTail, data...)
		c.outTail = nil
	}
	for i := 0; i < len(buf); i++ {
		next := bytes.IndexByte(buf[i:], 0x1b)
		if next < 0 {
			return
		}
		i += next
		seq := buf[i+1:]
		prefix := min(len(seq), 2)
		if string(seq[:prefix]) != "[?"[:prefix] {
			continue
		}
		end := prefix
		for end < len(seq) && end < maxScreenSwitch && (seq[end] >= '0' && seq[end] <= '9' || seq[end] == ';') {
			end++
		}
		if end == len(seq) { // cut off at the end of this output
			if end < maxScreenSwitch {
				c.outTail = append([]byte(nil), buf[i:]...)
			}
			return
		}
		if seq[end] != 'h' && seq[end] != 'l' {
			continue
		}
		for _, mode := range strings.Split(string(seq[2:end]), ";") {
			if mode == "1049" || mode == "1047" || mode == "47" {
				c.fullScreen = seq[end] == 'h'
				c.buf, c.esc, c.secret = c.buf[:0], 0, c.hidden
			}
		}
		i += end
	}
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
	if c.fullScreen {
		return
	}
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
