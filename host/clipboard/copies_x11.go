//go:build linux || freebsd || openbsd || netbsd

package clipboard

import (
	"context"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xfixes"
	"github.com/jezek/xgb/xproto"
)

// copies returns a channel that receives each time a program takes the
// clipboard, as every program does when the user copies, and is closed
// when the X connection ends; ctx ending closes it. It fails when the X
// server of $DISPLAY cannot say (no XFixes).
func copies(ctx context.Context) (<-chan struct{}, error) {
	c, err := xgb.NewConn()
	if err != nil {
		return nil, err
	}
	if err := watchOwner(c); err != nil {
		c.Close()
		return nil, err
	}
	ch := make(chan struct{}, 1)
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	go func() {
		defer close(ch)
		for {
			ev, err := c.WaitForEvent()
			if ev == nil && err == nil {
				return // the connection closed
			}
			if _, ok := ev.(xfixes.SelectionNotifyEvent); ok {
				select {
				case ch <- struct{}{}:
				default: // one pending is enough: the read takes what is there
				}
			}
		}
	}()
	return ch, nil
}

// watchOwner asks the X server to tell c when the CLIPBOARD selection
// changes owner.
func watchOwner(c *xgb.Conn) error {
	if err := xfixes.Init(c); err != nil {
		return err
	}
	if _, err := xfixes.QueryVersion(c, 1, 0).Reply(); err != nil {
		return err
	}
	const name = "CLIPBOARD"
	atom, err := xproto.InternAtom(c, false, uint16(len(name)), name).Reply()
	if err != nil {
		return err
	}
	root := xproto.Setup(c).DefaultScreen(c).Root
	return xfixes.SelectSelectionInputChecked(c, root, atom.Atom, xfixes.SelectionEventMaskSetSelectionOwner).Check()
}
