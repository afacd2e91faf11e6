//go:build linux || freebsd || openbsd || netbsd

package clipboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/tether-support/tether/internal/protocol"
)

// readTimeout bounds one read: the program that holds the clipboard
// answers for it, and one that hangs (frozen, or stopped in a debugger)
// would otherwise hold the read, and every clipboard message after it,
// for good.
const readTimeout = 2 * time.Second

// readText runs xclip, or else xsel, as robotgo would, but gives up on a
// clipboard owner that does not answer.
func readText() (string, error) {
	args := []string{"xclip", "-out", "-selection", "clipboard"}
	if _, err := exec.LookPath("xclip"); err != nil {
		args = []string{"xsel", "--output", "--clipboard"}
		if _, err := exec.LookPath("xsel"); err != nil {
			return "", errors.New("neither xclip nor xsel is installed")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	// The user may have copied far more than can be shared (a whole log
	// file), and the clipboard is read at each copy and every few seconds:
	// one byte past the limit says it is too large, and the rest is not
	// taken in.
	out, _ := io.ReadAll(io.LimitReader(stdout, protocol.MaxClipboard+1))
	tooLarge := len(out) > protocol.MaxClipboard
	if tooLarge {
		cancel() // the program need not hand over the rest
	}
	err = cmd.Wait()
	switch {
	case tooLarge:
		return string(out), nil
	case ctx.Err() != nil:
		return "", fmt.Errorf("%w after %s", ErrNoAnswer, readTimeout)
	}
	return string(out), err
}
