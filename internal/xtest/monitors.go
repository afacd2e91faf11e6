package xtest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xproto"
)

// Monitor is a RandR monitor in root window coordinates.
type Monitor struct {
	Name                string
	X, Y, Width, Height int
}

// SetMonitors declares monitors on display's screen, as
// `xrandr --setmonitor NAME W/MMxH/MM+X+Y OUTPUT` does: the first gets the
// screen's first RandR output (so it replaces the monitor the server made
// for that output), the others none. Xinerama then reports the same heads
// in the same order. They last as long as the server.
func SetMonitors(tb testing.TB, display string, ms ...Monitor) {
	tb.Helper()
	conn, err := xgb.NewConnDisplay(display)
	if err != nil {
		tb.Fatalf("connect to %s: %v", display, err)
	}
	defer conn.Close()
	screen := xproto.Setup(conn).DefaultScreen(conn)
	if err := randr.Init(conn); err != nil {
		tb.Fatalf("RandR on %s: %v", display, err)
	}
	if v, err := randr.QueryVersion(conn, 1, 5).Reply(); err != nil || v.MajorVersion == 1 && v.MinorVersion < 5 {
		tb.Fatalf("RandR 1.5 on %s: version %+v, %v", display, v, err)
	}
	res, err := randr.GetScreenResources(conn, screen.Root).Reply()
	if err != nil || len(res.Outputs) == 0 {
		tb.Fatalf("RandR screen resources on %s: %v (reply %+v)", display, err, res)
	}
	for i, m := range ms {
		atom, err := xproto.InternAtom(conn, false, uint16(len(m.Name)), m.Name).Reply()
		if err != nil {
			tb.Fatalf("intern monitor name %q: %v", m.Name, err)
		}
		info := randr.MonitorInfo{Name: atom.Atom, X: int16(m.X), Y: int16(m.Y),
			Width: uint16(m.Width), Height: uint16(m.Height),
			// 96 dots per inch, as a desktop monitor has.
			WidthInMillimeters: uint32(m.Width * 254 / 960), HeightInMillimeters: uint32(m.Height * 254 / 960)}
		if i == 0 {
			info.Outputs = res.Outputs[:1]
			info.NOutput = 1
		}
		if err := randr.SetMonitorChecked(conn, screen.Root, info).Check(); err != nil {
			tb.Fatalf("set monitor %+v on %s: %v", m, display, err)
		}
	}
}

// SplitMonitors splits display's screen into two monitors side by side, "L"
// (index 0) on the left half and "R" (index 1) on the right half, and
// returns them. With xpattern's quadrants L shows red over blue and R green
// over white.
func SplitMonitors(tb testing.TB, display string) []Monitor {
	tb.Helper()
	conn, err := xgb.NewConnDisplay(display)
	if err != nil {
		tb.Fatalf("connect to %s: %v", display, err)
	}
	screen := xproto.Setup(conn).DefaultScreen(conn)
	w, h := int(screen.WidthInPixels), int(screen.HeightInPixels)
	conn.Close()
	ms := []Monitor{{"L", 0, 0, w / 2, h}, {"R", w / 2, 0, w - w/2, h}}
	SetMonitors(tb, display, ms...)
	return ms
}

// SetMode sets display's screen to w x h, as the user does in their
// display settings (Xvfb's screen can shrink, and grow back to the size
// it started with).
func SetMode(tb testing.TB, display string, w, h int) {
	tb.Helper()
	mode := strconv.Itoa(w) + "x" + strconv.Itoa(h)
	run := func(args ...string) error {
		cmd := exec.Command("xrandr", args...)
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("xrandr %v: %v: %s", args, err, out)
		}
		return nil
	}
	if run("--output", "screen", "--mode", mode) == nil {
		return
	}
	if err := run("--newmode", mode, "0", strconv.Itoa(w), "0", "0", "0", strconv.Itoa(h), "0", "0", "0"); err != nil {
		tb.Fatal(err)
	}
	if err := run("--addmode", "screen", mode); err != nil {
		tb.Fatal(err)
	}
	if err := run("--output", "screen", "--mode", mode); err != nil {
		tb.Fatal(err)
	}
}
