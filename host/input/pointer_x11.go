//go:build linux || freebsd || openbsd || netbsd

package input

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"
)

// xDevice fakes the pointer's and the keyboard's events through the XTest
// extension, as a mouse and a keyboard make them. robotgo warps the
// pointer instead, and a warp is not an input event: the X server tells no
// one of it, so the capturer, which learns of pointer moves from XInput
// raw motion events, would see the cursor move only at its next slow
// check.
//
// Pointer and keyboard share one connection, so the server takes their
// events in the order they were sent: a click and the keys typed after it
// reach the window clicked. The events go unchecked: a checked one waits
// for the server's answer (a round trip through xgb's goroutines, a
// quarter of a millisecond on an idle machine and more while the server
// paints) before the next can go, which made every click wait for two. The
// server answers an unchecked request only when it fails (XTest fails only
// on a keycode or button out of range, which the injector never sends);
// such a failure is logged with the next event.
type xDevice struct {
	conn *xgb.Conn
	root xproto.Window
	log  *slog.Logger
	// unsynced says events went since the last round trip (see sync).
	unsynced bool

	// spare is a keycode no key of the user's keyboard has, mapped for a
	// moment to a character the layout lacks (as xdotool does); 0 if none.
	spare   xproto.Keycode
	perCode byte // keysyms per keycode
}

// openDevices connects to the X server of $DISPLAY for faking input. The
// pointer is nil when the server has no XTest (robotgo warps it then), the
// keyboard when the server does not number its keys the evdev way (keys
// then go by character through robotgo); err says why.
func openDevices(log *slog.Logger) (pointer, keyboard, error) {
	c, err := xgb.NewConn()
	if err != nil {
		return nil, nil, err
	}
	if err := xtest.Init(c); err != nil {
		c.Close()
		return nil, nil, err
	}
	d := &xDevice{conn: c, root: xproto.Setup(c).DefaultScreen(c).Root, log: log}
	if err := d.openKeyboard(); err != nil {
		return d, nil, err
	}
	return d, d, nil
}

// fake sends one XTest event.
func (d *xDevice) fake(typ, detail byte, x, y int16) {
	d.report()
	xtest.FakeInput(d.conn, typ, detail, 0, d.root, x, y, 0)
	d.unsynced = true
}

// report logs the failures the server reported of events sent before.
func (d *xDevice) report() {
	for {
		ev, err := d.conn.PollForEvent()
		if ev == nil && err == nil {
			return
		}
		if err != nil {
			d.log.Warn("the X server refused a faked input event", "err", err)
		}
	}
}

// sync returns once the server has taken every event sent before, so that
// an event faked through another connection (robotgo's) comes after them.
func (d *xDevice) sync() error {
	if !d.unsynced {
		return nil
	}
	if _, err := xproto.GetInputFocus(d.conn).Reply(); err != nil {
		return fmt.Errorf("reach the X server: %w", err)
	}
	d.unsynced = false
	d.report()
	return nil
}

// move puts the pointer at x, y on the root window.
func (d *xDevice) move(x, y int) error {
	const absolute = 0
	d.fake(xproto.MotionNotify, absolute, int16(x), int16(y))
	return nil
}

// button presses or releases X button n: 1 to 3 left, middle and right,
// 4 to 7 the wheel's notches up, down, left and right, 8 and 9 back and
// forward.
func (d *xDevice) button(n byte, down bool) error {
	if n < 1 || n > 9 {
		return errors.New("no such button")
	}
	typ := byte(xproto.ButtonRelease)
	if down {
		typ = xproto.ButtonPress
	}
	d.fake(typ, n, 0, 0)
	return nil
}
