// Package capture grabs the host's screen as BGRA frames.
//
// Two paths exist. On Linux with cgo, Open uses a persistent X11 connection
// and one MIT-SHM segment that XShmGetImage fills in place (about 0.7 ms for
// 1920x1080), with the cursor drawn in from XFixes. Everywhere else, and when
// the X server offers no usable MIT-SHM, it uses github.com/kbinani/screenshot,
// which opens a new X connection per frame (about 16 ms for 1920x1080 on X11)
// and does not draw the cursor. Capturer.Name says which one runs.
//
// Capturer.WaitChange lets the caller capture only when the picture
// changed: the X11 path learns of changes from the X server (DAMAGE for
// drawing, XFixes and the pointer position for the cursor) and wakes within
// a millisecond; the portable path polls and compares tile hashes. With
// DAMAGE, a Capture grabs only what changed since the last one into the
// segment (the rest still holds the screen) and Frame.Changed says where.
//
// A Capturer is not meant for concurrent Capture calls, nor for concurrent
// WaitChange calls; one Capture and one WaitChange may run at the same time.
// Close may be called from another goroutine: it waits for a Capture in
// progress and makes a blocked WaitChange return ErrClosed.
package capture

import (
	"context"
	"errors"
	"fmt"
	"image"
	"time"
)

// Frame is one captured screen image in BGRA (B,G,R,A bytes per pixel).
//
// The A byte carries no meaning: the X11 path leaves whatever the server
// returns there (0 on 24-bit screens). Consumers must ignore it.
type Frame struct {
	Width, Height, Stride int
	Pix                   []byte
	// Changed bounds what changed since the previous Capture, in frame
	// coordinates: the damage the X server reported and, if the cursor
	// moved or changed its image, its old and new place. It is empty when
	// nothing changed. Something drawn just before the grab can be in the
	// picture before it is reported; the next Capture's Changed covers
	// it. Without DAMAGE it bounds the 64x64 tiles whose hashes changed.
	// It is the whole frame for the first picture and after a resize.
	Changed image.Rectangle
}

// Capturer captures one monitor.
type Capturer interface {
	// Capture grabs the monitor. The returned Frame, including Pix, may be
	// reused or freed by the next Capture or WaitChange call and by Close:
	// copy what must outlive it. Width and Height follow the monitor when
	// the screen is resized (X11 path).
	Capture() (*Frame, error)
	// WaitChange blocks until the monitor's picture may have changed since
	// the last Capture, timeout passes or ctx ends. It returns true when a
	// change was seen (the caller should Capture now) and false on timeout;
	// ctx.Err() when ctx ended and ErrClosed when the capturer was closed.
	// Before the first Capture it returns true at once, and it keeps
	// returning true until the next Capture, so no change is lost between
	// WaitChange and Capture. A timeout <= 0 checks without waiting.
	//
	// The X11 path may return true for a change that Capture had already
	// picked up (a spurious wake costs one capture); the portable path
	// only reports a change it saw in the pixels.
	WaitChange(ctx context.Context, timeout time.Duration) (bool, error)
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

// ErrWayland is returned (wrapped) when DISPLAY is the Xwayland server of a
// Wayland session: there an X client sees only the windows of other X
// clients, so the technician would get a black screen.
var ErrWayland = errors.New("this desktop session uses Wayland, which does not let other programs see the screen: the technician would see only a black picture. Sign out, pick an Xorg session on the sign-in screen (on Ubuntu the gear button, \"Ubuntu on Xorg\"), sign in and run this again")

// ErrNoMonitor is returned (wrapped) when the requested monitor index does
// not exist.
var ErrNoMonitor = errors.New("no such monitor")

// ErrClosed is returned (wrapped) by Capture and WaitChange once Close has
// been called, including to a WaitChange that was blocked in it.
var ErrClosed = errors.New("capturer is closed")

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
