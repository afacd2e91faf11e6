//go:build linux || freebsd || openbsd || netbsd

package input

import (
	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"
)

// xPointer moves the pointer through the XTest extension, as a mouse does.
// robotgo warps it instead, and a warp is not an input event: the X server
// tells no one of it, so the capturer, which learns of pointer moves from
// XInput raw motion events, would see the cursor move only at its next
// slow check.
type xPointer struct {
	conn *xgb.Conn
	root xproto.Window
}

// openPointer connects to the X server of $DISPLAY for moving the pointer;
// it fails when the server has no XTest, and robotgo moves it then.
func openPointer() (pointer, error) {
	c, err := xtestConn()
	if err != nil {
		return nil, err
	}
	return &xPointer{conn: c, root: xproto.Setup(c).DefaultScreen(c).Root}, nil
}

// xtestConn connects to the X server of $DISPLAY for faking input
// through the XTest extension.
func xtestConn() (*xgb.Conn, error) {
	c, err := xgb.NewConn()
	if err != nil {
		return nil, err
	}
	if err := xtest.Init(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// move puts the pointer at x, y on the root window. It returns once the
// server has moved it, so that a button pressed next through another
// connection lands there.
func (p *xPointer) move(x, y int) error {
	const absolute = 0
	return xtest.FakeInputChecked(p.conn, xproto.MotionNotify, absolute, 0, p.root, int16(x), int16(y), 0).Check()
}
