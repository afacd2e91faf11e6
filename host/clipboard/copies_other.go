//go:build !(linux || freebsd || openbsd || netbsd)

package clipboard

import (
	"context"
	"errors"
)

// copies is not known here: Watch polls.
func copies(context.Context) (<-chan struct{}, error) {
	return nil, errors.New("no notice of copies on this system")
}
