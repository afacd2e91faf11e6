// Package capture grabs the host's screen as BGRA frames.
//
// Two paths exist. On Linux with cgo, Open uses a persistent X11 connection
// and one MIT-SHM segment that XShmGetImage fills in place (about 0.7 ms for
// 1920x1080), with the cursor drawn in from XFixes. Everywhere else, and when
// the X server offers no usable MIT-SHM, it uses github.com/kbinani/screenshot,
// which opens a new X connection per frame (about 16 ms for 1920x1080 on X11)
// and does not draw the cursor. Capturer.Name says which one runs.
//
// A Capturer is not meant for concurrent Capture calls; Close may be called
// from another goroutine and waits for a Capture in progress.
package capture

import (
	"errors"
	"fmt"
)

// Frame is one captured screen image in BGRA (B,G,R,A bytes per pixel).
//
// The A byte carries no meaning: the X11 path leaves whatever the server
// returns there (0 on 24-bit screens). Consumers must ignore it.
type Frame struct {
	Width, Height, Stride int
	Pix                   []byte
}

// Capturer captures one monitor.
type Capturer interface {
	// Capture grabs the monitor. The returned Frame, including Pix, may be
	// reused or freed by the next Capture call and by Close: copy what must
	// outlive it. Width and Height follow the monitor when the screen is
	// resized (X11 path).
	Capture() (*Frame, error)
	// Size is the size of the frames Capture currently returns.
	Size() (width, height int)
	// Bounds is the captured monitor's rectangle on the virtual screen
	// (root window coordinates on X11), to map pointer coordinates. It
	// follows the monitor when the screen is resized (X11 path, after the
	// next Capture).
	Bounds() (x, y, width, height int)
	// Name says which path runs, for logs: "xshm" or "screenshot".
	Name() string
	Close() error
}

// ErrNoDisplay is returned (wrapped) when no display is reachable.
var ErrNoDisplay = errors.New("no display: DISPLAY is not set or the X server does not accept connections; run the host inside the user's graphical session (or start Xvfb) and set DISPLAY")

// ErrNoMonitor is returned (wrapped) when the requested monitor index does
// not exist.
var ErrNoMonitor = errors.New("no such monitor")

// Display is one monitor as Displays lists it. X, Y, Width and Height are
// its rectangle on the virtual screen (root window coordinates on X11).
type Display struct {
	// Index is what Open takes to capture this monitor.
	Index int
	// Name is the X server's name for the monitor (a RandR output or
	// monitor name such as "HDMI-1"), or a made-up one where the platform
	// names none.
	Name                string
	X, Y, Width, Height int
	// Primary is set on the monitor the platform calls primary. An X
	// server may call none primary (Xvfb does): callers that need a
	// default should then take index 0.
	Primary bool
}

// Names returned by Capturer.Name.
const (
	NameXShm     = "xshm"
	NamePortable = "screenshot"
)

func checkIndex(display int) error {
	if display < 0 {
		return fmt.Errorf("monitor %d: %w (indexes start at 0)", display, ErrNoMonitor)
	}
	return nil
}
