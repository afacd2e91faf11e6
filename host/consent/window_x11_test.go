//go:build linux || freebsd || openbsd || netbsd

package consent

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/tether-support/tether/internal/xtest"
)

// TestKeepInViewWithoutDisplay: with no X server to ask, the sharing window
// is shown all the same; why it is not kept above is logged once a session.
func TestKeepInViewWithoutDisplay(t *testing.T) {
	t.Setenv("DISPLAY", xtest.FreeDisplay(t))
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	d := &Dialog{}
	for range 3 {
		d.keepInView(context.Background(), 1, log)
	}
	if n := strings.Count(buf.String(), "cannot be kept above"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, buf.String())
	}
}
