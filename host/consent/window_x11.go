//go:build linux || freebsd || openbsd || netbsd

package consent

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// How often the sharing window's state is read, and how long its window
// is looked for once zenity started. A poll costs a few round trips to the
// X server and is quicker than hideGuard by far.
const (
	windowPoll = 200 * time.Millisecond
	windowFind = 10 * time.Second
)

// keepInView keeps zenity's sharing window (the one of process pid) in the
// user's sight until ctx ends, through the window manager: it asks it to
// keep the window above the others, so that a technician's windows cannot
// cover it, raises it again when another window kept above came over it,
// and shows it again when it was minimised, each just after a technician's
// button, key or text. What the user does is theirs.
// Without an X window manager there is nothing to ask and nothing that
// minimises: it does nothing then, quietly.
func (d *Dialog) keepInView(ctx context.Context, pid int, log *slog.Logger) {
	c, err := xgb.NewConn()
	if err != nil {
		d.cannotWatch(log, fmt.Errorf("connect to the X display: %w", err))
		return
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, c.Close) // ends a round trip under way
	defer stop()
	x := &wm{c: c, root: xproto.Setup(c).DefaultScreen(c).Root}
	for name, a := range map[string]*xproto.Atom{
		"_NET_CLIENT_LIST": &x.clients, "_NET_WM_PID": &x.pid, "_NET_WM_STATE": &x.state,
		"_NET_WM_STATE_ABOVE": &x.above, "_NET_WM_STATE_HIDDEN": &x.hidden, "WM_STATE": &x.wmState,
		"_NET_ACTIVE_WINDOW": &x.active, "CARDINAL": &x.cardinal, "ATOM": &x.atom, "WINDOW": &x.window,
		"_NET_CLIENT_LIST_STACKING": &x.stacking, "_NET_RESTACK_WINDOW": &x.restack,
	} {
		*a = x.intern(name)
	}
	tick := time.NewTicker(windowPoll)
	defer tick.Stop()
	var win xproto.Window
	give := time.Now().Add(windowFind)
	was, above := false, true // minimised, and kept above, at the last look
	raised := false           // raised since the technician's last click or key
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if win == 0 {
			if win = x.find(uint32(pid)); win == 0 {
				if time.Now().After(give) {
					// No window manager lists clients: nothing to do.
					if _, ok := x.property(x.root, x.clients, x.window); ok {
						d.cannotWatch(log, fmt.Errorf("no window of zenity (process %d) in the window manager's list", pid))
					}
					return
				}
				continue
			}
		}
		states, ok := x.property(win, x.state, x.atom)
		if !ok {
			return // gone: zenity exits
		}
		// Asked again only when it was above and no longer is (the window
		// menu's "always on top"): a window manager that ignores the
		// request is not asked five times a second.
		if has := slices.Contains(states, uint32(x.above)); !has && above {
			x.message(win, x.state, 1, uint32(x.above), 0, 1) // add, from an application
			above = false
		} else if has {
			above = true
		}
		// A technician's window set "always on top" from the window menu
		// shares the layer kept above, and can come over it: after a
		// technician's click or key the sharing window is raised over
		// whatever is above it (logged once a click or key).
		switch {
		case !d.pressedRecently():
			raised = false
		case !x.onTop(win):
			if !raised {
				log.Warn("another window was over the sharing window just after a technician's click or key; raised again")
				raised = true
			}
			x.message(win, x.restack, 2, 0, 0) // 2: on the user's behalf; no sibling; 0: above
		}
		wmState, _ := x.property(win, x.wmState, x.wmState)
		minimised := slices.Contains(states, uint32(x.hidden)) || len(wmState) > 0 && wmState[0] == 3 // IconicState
		if minimised && !was && d.pressedRecently() {
			// It may have been the technician: only the user hides it.
			log.Warn("the sharing window was minimised just after a technician's click or key; shown again")
			xproto.MapWindow(c, win)
			x.message(win, x.active, 2, 0) // 2: on the user's behalf, as a pager
			minimised = false
		}
		was = minimised
	}
}

// cannotWatch logs, once per Dialog, why the sharing window is not kept in
// view. The window works without it; it is only easier to lose sight of.
func (d *Dialog) cannotWatch(log *slog.Logger, err error) {
	d.mu.Lock()
	logged := d.watchLogged
	d.watchLogged = true
	d.mu.Unlock()
	if !logged {
		log.Info("the sharing window cannot be kept above other windows", "err", err)
	}
}

// wm speaks to the window manager the way EWMH and ICCCM say, through
// properties and client messages on the root window.
type wm struct {
	c    *xgb.Conn
	root xproto.Window

	clients, stacking, pid, state, above, hidden, wmState, active, restack, cardinal, atom, window xproto.Atom
}

// onTop reports whether w is the top of the window manager's windows, or
// whether it cannot tell (no stacking list).
func (x *wm) onTop(w xproto.Window) bool {
	stack, ok := x.property(x.root, x.stacking, x.window)
	return !ok || len(stack) == 0 || xproto.Window(stack[len(stack)-1]) == w
}

func (x *wm) intern(name string) xproto.Atom {
	r, err := xproto.InternAtom(x.c, false, uint16(len(name)), name).Reply()
	if err != nil {
		return xproto.AtomNone
	}
	return r.Atom
}

// property reads a property of 32-bit values; ok is false when the window
// is gone or the property is missing or of another type.
func (x *wm) property(w xproto.Window, prop, typ xproto.Atom) (values []uint32, ok bool) {
	r, err := xproto.GetProperty(x.c, false, w, prop, typ, 0, 1024).Reply()
	if err != nil || r.Format != 32 || r.Type != typ {
		return nil, false
	}
	for b := r.Value; len(b) >= 4; b = b[4:] {
		values = append(values, xgb.Get32(b))
	}
	return values, true
}

// find returns the managed window of process pid, or 0.
func (x *wm) find(pid uint32) xproto.Window {
	clients, _ := x.property(x.root, x.clients, x.window)
	for _, w := range clients {
		if p, _ := x.property(xproto.Window(w), x.pid, x.cardinal); slices.Equal(p, []uint32{pid}) {
			return xproto.Window(w)
		}
	}
	return 0
}

// message sends the window manager a client message about w, as EWMH
// says: to the root window, for whoever redirects its substructure.
func (x *wm) message(w xproto.Window, typ xproto.Atom, data ...uint32) {
	ev := xproto.ClientMessageEvent{Format: 32, Window: w, Type: typ,
		Data: xproto.ClientMessageDataUnionData32New(append(data, make([]uint32, 5-len(data))...))}
	xproto.SendEvent(x.c, false, x.root,
		xproto.EventMaskSubstructureRedirect|xproto.EventMaskSubstructureNotify, string(ev.Bytes()))
}
