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

// Read returns the clipboard text.
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

// Watch polls the clipboard every interval and calls onChange with new
// text until ctx ends. X11 has no portable change notification that works
// without owning a window, and a poll of a few hundred milliseconds is
// what a person copying and pasting can not tell apart. What the clipboard
// holds when Watch starts is not reported: only changes are.
func Watch(ctx context.Context, interval time.Duration, onChange func(string)) error {
	last, err := Read()
	if err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
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
