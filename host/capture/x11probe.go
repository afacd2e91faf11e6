//go:build linux || freebsd || openbsd || netbsd

package capture

import (
	"fmt"
	"image"
	"os"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xinerama"
	"github.com/jezek/xgb/xproto"
)

// probeX checks that $DISPLAY names an X server that accepts a connection
// and returns the display name and the monitor's rectangle in root window
// coordinates. It uses the pure-Go xgb client on purpose: Xlib and the
// libraries built on it can crash the process when the display is missing,
// so no C code runs before this succeeded.
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
// monitor display in root window coordinates.
func probeMonitor(name string, display int) (image.Rectangle, error) {
	conn, err := xgb.NewConnDisplay(name)
	if err != nil {
		return image.Rectangle{}, fmt.Errorf("connect to X display %q: %w: %w", name, ErrNoDisplay, err)
	}
	defer conn.Close()

	screen := xproto.Setup(conn).DefaultScreen(conn)
	root := image.Rect(0, 0, int(screen.WidthInPixels), int(screen.HeightInPixels))
	heads := []image.Rectangle{root}
	// Without Xinerama (or with it inactive) the whole first screen is the
	// only monitor.
	if xinerama.Init(conn) == nil {
		active, err := xinerama.IsActive(conn).Reply()
		if err == nil && active.State != 0 {
			reply, err := xinerama.QueryScreens(conn).Reply()
			if err != nil {
				return image.Rectangle{}, fmt.Errorf("query Xinerama monitors on %q: %w", name, err)
			}
			heads = heads[:0]
			for _, s := range reply.ScreenInfo {
				r := image.Rect(int(s.XOrg), int(s.YOrg), int(s.XOrg)+int(s.Width), int(s.YOrg)+int(s.Height))
				heads = append(heads, r.Intersect(root))
			}
		}
	}
	if display >= len(heads) {
		return image.Rectangle{}, fmt.Errorf("monitor %d on %q: %w (the display has %d)", display, name, ErrNoMonitor, len(heads))
	}
	r := heads[display]
	if r.Empty() {
		return image.Rectangle{}, fmt.Errorf("monitor %d on %q lies outside the %dx%d screen: %w", display, name, root.Dx(), root.Dy(), ErrNoMonitor)
	}
	return r, nil
}
