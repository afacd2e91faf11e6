// Package clipboard reads and writes the user's clipboard text and
// notices when it changes. On Linux it runs xclip or xsel (one of them
// must be installed): itself to read, with a time limit, and through
// robotgo to write.
package clipboard

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/go-vgo/robotgo"

	"github.com/tether-support/tether/internal/protocol"
)

// ErrTooLarge is returned for text over protocol.MaxClipboard.
var ErrTooLarge = errors.New("clipboard text too large")

// ErrNoAnswer is returned when the program that holds the clipboard does
// not hand it over in time.
var ErrNoAnswer = errors.New("the program holding the clipboard did not answer")

// Read returns the clipboard text. On X11 a text longer than
// protocol.MaxClipboard is cut one byte past it: enough to tell that it is
// too large to share, without taking in all the user copied.
func Read() (string, error) {
	text, err := readText()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		// xclip and xsel fail when no one owns the clipboard or it holds
		// no text: for the technician that is an empty clipboard.
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read clipboard: %w", err)
	}
	return text, nil
}

// Write sets the clipboard text and returns once a paste gets it, or after
// a second: xclip may exit before the X server knows it owns the
// clipboard, and a paste meanwhile gets what was there before.
func Write(text string) error {
	if len(text) > protocol.MaxClipboard {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(text), protocol.MaxClipboard)
	}
	if err := robotgo.WriteAll(text); err != nil {
		return fmt.Errorf("write clipboard: %w", err)
	}
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if now, err := Read(); err == nil && now == text {
			break
		}
	}
	return nil
}

// recheck is how often Watch reads the clipboard where the X server tells
// it of copies: a program that changed its text without taking the
// clipboard again would otherwise go unnoticed.
const recheck = 5 * time.Second

// Watch calls onChange with the clipboard's new text each time it changes,
// until ctx ends. What the clipboard holds when Watch starts is not
// reported: only changes are. Where the X server tells of copies (XFixes),
// the clipboard is read as the user copies and every recheck; elsewhere it
// is read every interval, which a person copying and pasting cannot tell
// apart from at once when it is a few hundred milliseconds. On X11 each
// read runs a program (xclip), which an idle session should not do twice a
// second.
func Watch(ctx context.Context, interval time.Duration, onChange func(string)) error {
	last, err := Read()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // and the X connection with it
	every := interval
	copied, err := copies(ctx)
	if err == nil {
		every = max(interval, recheck)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case _, ok := <-copied:
			if !ok { // the X connection ended: poll
				copied = nil
				t.Reset(interval)
			}
		}
		text, err := Read()
		if errors.Is(err, ErrNoAnswer) {
			continue // the next poll asks again
		}
		if err != nil {
			return err
		}
		if text != last {
			last = text
			onChange(text)
		}
	}
}
