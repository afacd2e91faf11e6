//go:build linux || freebsd || openbsd || netbsd

package capture

import (
	"errors"
	"fmt"
	"image"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xinerama"
	"github.com/jezek/xgb/xproto"
)

func init() {
	// xgb writes to standard error, in the user's terminal, that it
	// connects without an Xauthority file (as under Xvfb or with xhost);
	// what goes wrong reaches the host's log as the errors returned here.
	xgb.Logger = log.New(io.Discard, "", 0)
}

// Displays lists the monitors of the X screen named by $DISPLAY, in the X
// server's order (the order Xinerama, and so the portable path, uses too):
// RandR 1.5 monitors when the server has them, else Xinerama heads, else
// the whole screen as one monitor. Rectangles are as the server reports
// them; Open captures their part inside the screen.
func Displays() ([]Display, error) {
	name := os.Getenv("DISPLAY")
	if name == "" {
		return nil, fmt.Errorf("list monitors: DISPLAY is empty: %w", ErrNoDisplay)
	}
	xgbMu.Lock()
	defer xgbMu.Unlock()
	conn, err := connectX(name)
	if err != nil {
		return nil, fmt.Errorf("list monitors: %w", err)
	}
	defer conn.Close()
	return monitors(conn, name)
}

// Reachable reports whether the X server named by $DISPLAY still accepts
// connections. It costs one connection and nothing is drawn or read: the
// host asks it while nothing is captured (paused, before anyone may see),
// to learn when the user's desktop goes away, as when they log out.
func Reachable() error {
	name := os.Getenv("DISPLAY")
	if name == "" {
		return fmt.Errorf("DISPLAY is empty: %w", ErrNoDisplay)
	}
	xgbMu.Lock()
	defer xgbMu.Unlock()
	conn, err := connectX(name)
	if err != nil {
		return err
	}
	conn.Close()
	return nil
}

// connectX connects with the pure-Go xgb client on purpose: Xlib and the
// libraries built on it can crash the process when the display is missing,
// so no C code runs before a connection through this succeeded. Callers
// hold xgbMu for the connection's life.
func connectX(name string) (conn *xgb.Conn, err error) {
	err = reopenX(func() error {
		if conn, err = xgb.NewConnDisplay(name); err != nil {
			return fmt.Errorf("connect to X display %q: %w: %w", name, ErrNoDisplay, err)
		}
		return nil
	})
	return conn, err
}

// xResetWait is how long opening a connection to the X server is tried
// again. A server resets when its last client leaves (nothing else on the
// display: a bare Xvfb without -noreset), and meanwhile drops the
// connections it is offered; that last client may be our own, closed just
// before (the probe), or a program that just ended.
const xResetWait = time.Second

// reopenX calls open until it succeeds, fails otherwise than for want of
// a connection, or xResetWait has passed.
func reopenX(open func() error) error {
	deadline := time.Now().Add(xResetWait)
	for {
		err := open()
		if !errors.Is(err, ErrNoDisplay) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probeX checks that $DISPLAY names an X server that accepts a connection
// and returns the display name and the monitor's rectangle in root window
// coordinates.
func probeX(display int) (string, image.Rectangle, error) {
	if err := checkIndex(display); err != nil {
		return "", image.Rectangle{}, err
	}
	name := os.Getenv("DISPLAY")
	if name == "" {
		return "", image.Rectangle{}, fmt.Errorf("DISPLAY is empty: %w", ErrNoDisplay)
	}
	r, err := probeMonitor(name, display)
	return name, r, err
}

// probeMonitor connects to X display name and returns the rectangle of
// monitor display in root window coordinates, clipped to the screen.
func probeMonitor(name string, display int) (image.Rectangle, error) {
	xgbMu.Lock()
	defer xgbMu.Unlock()
	conn, err := connectX(name)
	if err != nil {
		return image.Rectangle{}, err
	}
	defer conn.Close()
	heads, err := monitors(conn, name)
	if err != nil {
		return image.Rectangle{}, err
	}
	if xwayland(conn, heads) {
		return image.Rectangle{}, fmt.Errorf("X display %q: %w", name, ErrWayland)
	}
	if display >= len(heads) {
		return image.Rectangle{}, fmt.Errorf("monitor %d on %q: %w (the display has %d)", display, name, ErrNoMonitor, len(heads))
	}
	screen := xproto.Setup(conn).DefaultScreen(conn)
	root := image.Rect(0, 0, int(screen.WidthInPixels), int(screen.HeightInPixels))
	d := heads[display]
	r := image.Rect(d.X, d.Y, d.X+d.Width, d.Y+d.Height).Intersect(root)
	if r.Empty() {
		return image.Rectangle{}, fmt.Errorf("monitor %d on %q lies outside the %dx%d screen: %w", display, name, root.Dx(), root.Dy(), ErrNoMonitor)
	}
	return r, nil
}

// xwayland reports whether conn is to Xwayland: it has the XWAYLAND
// extension (from Xwayland 23.1 on), or, before that, RandR outputs named
// XWAYLAND0, XWAYLAND1 and so on.
func xwayland(conn *xgb.Conn, heads []Display) bool {
	const ext = "XWAYLAND"
	if r, err := xproto.QueryExtension(conn, uint16(len(ext)), ext).Reply(); err == nil && r.Present {
		return true
	}
	for _, h := range heads {
		if strings.HasPrefix(h.Name, ext) {
			return true
		}
	}
	return false
}

// tablesSet names the extensions whose events and errors xgb's
// process-wide tables already know; guarded by xgbMu.
var tablesSet = map[string]bool{}

// initExtension sets conn up for an extension as init (the extension's
// xgb Init) does, but writes xgb's process-wide tables only the first time.
// The monitors are listed every few seconds, and the reader goroutine of a
// connection that receives events (the clipboard's, which hears of copies)
// reads those tables without a lock: a write at that moment would crash
// the process. Callers hold xgbMu.
func initExtension(conn *xgb.Conn, name string, init func(*xgb.Conn) error) error {
	if !tablesSet[name] {
		if err := init(conn); err != nil {
			return err
		}
		tablesSet[name] = true
		return nil
	}
	reply, err := xproto.QueryExtension(conn, uint16(len(name)), name).Reply()
	if err != nil {
		return err
	}
	if !reply.Present {
		return fmt.Errorf("the X server has no %s", name)
	}
	conn.ExtLock.Lock()
	conn.Extensions[name] = reply.MajorOpcode
	conn.ExtLock.Unlock()
	return nil
}

// monitors lists the monitors of the default screen of conn.
func monitors(conn *xgb.Conn, name string) ([]Display, error) {
	screen := xproto.Setup(conn).DefaultScreen(conn)
	if list, err := randrMonitors(conn, screen.Root); err != nil {
		return nil, fmt.Errorf("list RandR monitors on %q: %w", name, err)
	} else if len(list) > 0 {
		return list, nil
	}
	// Servers before RandR 1.5 (or without RandR) may still report heads
	// through Xinerama.
	if initExtension(conn, "XINERAMA", xinerama.Init) == nil {
		active, err := xinerama.IsActive(conn).Reply()
		if err == nil && active.State != 0 {
			reply, err := xinerama.QueryScreens(conn).Reply()
			if err != nil {
				return nil, fmt.Errorf("query Xinerama monitors on %q: %w", name, err)
			}
			var list []Display
			for i, s := range reply.ScreenInfo {
				list = append(list, Display{Index: i, Name: fmt.Sprintf("Xinerama-%d", i),
					X: int(s.XOrg), Y: int(s.YOrg), Width: int(s.Width), Height: int(s.Height)})
			}
			if len(list) > 0 {
				return list, nil
			}
		}
	}
	return []Display{{Index: 0, Name: "screen", Width: int(screen.WidthInPixels), Height: int(screen.HeightInPixels), Primary: true}}, nil
}

// randrMonitors returns the active RandR 1.5 monitors, or none when the
// server lacks RandR 1.5.
func randrMonitors(conn *xgb.Conn, root xproto.Window) ([]Display, error) {
	if initExtension(conn, "RANDR", randr.Init) != nil {
		return nil, nil
	}
	v, err := randr.QueryVersion(conn, 1, 5).Reply()
	if err != nil || v.MajorVersion < 1 || v.MajorVersion == 1 && v.MinorVersion < 5 {
		return nil, nil
	}
	reply, err := randr.GetMonitors(conn, root, true).Reply()
	if err != nil {
		return nil, err
	}
	// Ask for every name before waiting for the first: one round trip.
	names := make([]xproto.GetAtomNameCookie, len(reply.Monitors))
	for i, m := range reply.Monitors {
		names[i] = xproto.GetAtomName(conn, m.Name)
	}
	list := make([]Display, len(reply.Monitors))
	for i, m := range reply.Monitors {
		name := fmt.Sprintf("monitor-%d", i)
		if n, err := names[i].Reply(); err == nil {
			name = n.Name
		}
		list[i] = Display{Index: i, Name: name, X: int(m.X), Y: int(m.Y), Width: int(m.Width), Height: int(m.Height), Primary: m.Primary}
	}
	return list, nil
}
