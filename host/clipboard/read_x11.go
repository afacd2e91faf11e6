//go:build linux || freebsd || openbsd || netbsd

package clipboard

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"
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
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).Output()
	if ctx.Err() != nil {
		return "", fmt.Errorf("%w after %s", ErrNoAnswer, readTimeout)
	}
	return string(out), err
}
