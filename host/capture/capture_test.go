//go:build linux

package capture

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	xtestext "github.com/jezek/xgb/xtest"
	"github.com/tether-support/tether/internal/xtest"
)

// Quadrant colours painted by testdata/xpattern -mode pattern.
var (
	red   = rgbOf(xtest.TopLeft)
	green = rgbOf(xtest.TopRight)
	blue  = rgbOf(xtest.BottomLeft)
	white = rgbOf(xtest.BottomRight)
)

type rgb struct{ r, g, b byte }

func rgbOf(c [3]uint8) rgb { return rgb{c[0], c[1], c[2]} }

func (c rgb) String() string { return fmt.Sprintf("#%02x%02x%02x", c.r, c.g, c.b) }

func pixel(f *Frame, x, y int) rgb {
	i := y*f.Stride + 4*x
	return rgb{f.Pix[i+2], f.Pix[i+1], f.Pix[i]}
}

type opener struct {
	name string
	open func(int) (Capturer, error)
}

// openers lists both paths; against Xvfb, Open must pick openName.
var openers = []opener{{openName, Open}, {NamePortable, OpenPortable}}

func mustOpen(t testing.TB, o opener, display int) Capturer {
	t.Helper()
	c, err := o.open(display)
	if err != nil {
		t.Fatalf("open %s capturer for monitor %d: %v", o.name, display, err)
	}
	t.Cleanup(func() { c.Close() })
	if c.Name() != o.name {
		t.Fatalf("capturer runs %q, want %q", c.Name(), o.name)
	}
	return c
}

// xconn opens a pure-Go X connection for driving the test display.
func xconn(t testing.TB, display string) (*xgb.Conn, *xproto.ScreenInfo) {
	t.Helper()
	conn, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatalf("connect to %s: %v", display, err)
	}
	t.Cleanup(conn.Close)
	return conn, xproto.Setup(conn).DefaultScreen(conn)
}

// warp moves the pointer and waits until the server has done it.
func warp(t testing.TB, conn *xgb.Conn, root xproto.Window, x, y int) {
	t.Helper()
	if err := xproto.WarpPointerChecked(conn, 0, root, 0, 0, 0, 0, int16(x), int16(y)).Check(); err != nil {
		t.Fatalf("warp pointer to %d,%d: %v", x, y, err)
	}
}

// move moves the pointer as a mouse does, through XTest (which makes an
// input event, where a warp makes none), and waits until the server has.
func move(t testing.TB, conn *xgb.Conn, root xproto.Window, x, y int) {
	t.Helper()
	if err := xtestext.Init(conn); err != nil {
		t.Fatalf("XTest: %v", err)
	}
	if err := xtestext.FakeInputChecked(conn, xproto.MotionNotify, 0, 0, root, int16(x), int16(y), 0).Check(); err != nil {
		t.Fatalf("move pointer to %d,%d: %v", x, y, err)
	}
}

type point struct {
	x, y int
	want rgb
}

// quadrantPoints samples every quadrant at its corners and centre, right
// next to the split lines, which catches offsets and stride errors.
func quadrantPoints(w, h int) []point {
	hw, hh := w/2, h/2
	var pts []point
	for _, q := range []struct {
		x0, y0, x1, y1 int
		c              rgb
	}{
		{0, 0, hw - 1, hh - 1, red},
		{hw, 0, w - 1, hh - 1, green},
		{0, hh, hw - 1, h - 1, blue},
		{hw, hh, w - 1, h - 1, white},
	} {
		pts = append(pts,
			point{q.x0, q.y0, q.c}, point{q.x1, q.y0, q.c}, point{q.x0, q.y1, q.c}, point{q.x1, q.y1, q.c},
			point{(q.x0 + q.x1) / 2, (q.y0 + q.y1) / 2, q.c})
	}
	return pts
}

func checkPoints(t *testing.T, f *Frame, pts []point) {
	t.Helper()
	for _, p := range pts {
		if got := pixel(f, p.x, p.y); got != p.want {
			t.Errorf("pixel %d,%d = %v, want %v", p.x, p.y, got, p.want)
		}
	}
}

func checkFrame(t *testing.T, f *Frame, w, h int) {
	t.Helper()
	if f.Width != w || f.Height != h {
		t.Fatalf("frame is %dx%d, want %dx%d", f.Width, f.Height, w, h)
	}
	if f.Stride < 4*w || len(f.Pix) < f.Stride*(h-1)+4*w {
		t.Fatalf("frame stride %d and %d bytes cannot hold %dx%d BGRA", f.Stride, len(f.Pix), w, h)
	}
}

func TestCapturePattern(t *testing.T) {
	const w, h = 1280, 720
	display := xtest.StartXvfb(t, w, h)
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	conn, screen := xconn(t, display)
	// The pointer starts at the centre, where the quadrants meet; park it
	// on a spot no sample looks at.
	warp(t, conn, screen.Root, 300, 200)

	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			c := mustOpen(t, o, 0)
			if gw, gh := c.Size(); gw != w || gh != h {
				t.Errorf("Size() = %dx%d, want %dx%d", gw, gh, w, h)
			}
			for i := 0; i < 3; i++ { // the reused frame must stay right
				f, err := c.Capture()
				if err != nil {
					t.Fatalf("capture %d: %v", i, err)
				}
				checkFrame(t, f, w, h)
				checkPoints(t, f, quadrantPoints(w, h))
			}
		})
	}
}

// TestCaptureSeesChanges checks that later captures show what the screen
// shows now, not what it showed when the segment was attached.
func TestCaptureSeesChanges(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display, "-mode", "counter", "-interval", "100")
	conn, screen := xconn(t, display)
	warp(t, conn, screen.Root, 0, 0)

	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			c := mustOpen(t, o, 0)
			grey := func() byte {
				f, err := c.Capture()
				if err != nil {
					t.Fatalf("capture: %v", err)
				}
				// xpattern fills the window in one request, so a capture
				// never sees two levels at once.
				v := pixel(f, 320, 240)
				for _, p := range [][2]int{{100, 100}, {639, 0}, {0, 479}, {639, 479}} {
					if got := pixel(f, p[0], p[1]); got != v || v.r != v.g || v.g != v.b {
						t.Fatalf("pixel %v = %v, centre %v: want one grey level everywhere", p, got, v)
					}
				}
				return v.r
			}
			first := grey()
			deadline := time.Now().Add(5 * time.Second)
			for grey() == first {
				if time.Now().After(deadline) {
					t.Fatalf("grey level stayed %d for 5s while xpattern changes it every 100ms", first)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestWaylandSession: on the Xwayland server of a Wayland desktop (Ubuntu's
// and Fedora's default) an X client sees only other X clients' windows;
// both paths refuse it and say what the user can do, rather than share a
// black screen.
func TestWaylandSession(t *testing.T) {
	t.Setenv("DISPLAY", xtest.StartXwayland(t))
	for _, o := range openers {
		c, err := o.open(0)
		if err == nil {
			c.Close()
			t.Fatalf("%s: open succeeded on Xwayland", o.name)
		}
		if !errors.Is(err, ErrWayland) || !strings.Contains(err.Error(), "Xorg session") {
			t.Errorf("%s: error %v, want one that says to sign in to an Xorg session", o.name, err)
		}
	}
}

func TestNoDisplay(t *testing.T) {
	for _, tc := range []struct{ name, display string }{
		{"unset", ""},
		{"no server", xtest.FreeDisplay(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DISPLAY", tc.display)
			for _, o := range openers {
				c, err := o.open(0)
				if err == nil {
					c.Close()
					t.Fatalf("%s: open succeeded with DISPLAY=%q", o.name, tc.display)
				}
				if !errors.Is(err, ErrNoDisplay) {
					t.Errorf("%s: error %v is not ErrNoDisplay", o.name, err)
				}
				if !strings.Contains(err.Error(), "DISPLAY") {
					t.Errorf("%s: error %q does not tell the user to check DISPLAY", o.name, err)
				}
			}
		})
	}
}

func TestMonitors(t *testing.T) {
	const w, h = 1280, 480
	display := xtest.StartXvfb(t, w, h)
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	conn, screen := xconn(t, display)
	// Far from the sampled corners of either monitor.
	warp(t, conn, screen.Root, 3*w/4, h/4)
	xtest.SplitMonitors(t, display)

	list, err := Displays()
	if err != nil {
		t.Fatalf("Displays: %v", err)
	}
	want := []Display{
		{Index: 0, Name: "L", X: 0, Y: 0, Width: w / 2, Height: h},
		{Index: 1, Name: "R", X: w / 2, Y: 0, Width: w / 2, Height: h},
	}
	if !slices.Equal(list, want) {
		t.Fatalf("Displays() = %+v, want %+v", list, want)
	}

	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			// The right monitor holds the right half of the pattern:
			// green above white.
			c := mustOpen(t, o, 1)
			f, err := c.Capture()
			if err != nil {
				t.Fatalf("capture monitor 1: %v", err)
			}
			checkFrame(t, f, w/2, h)
			checkPoints(t, f, []point{
				{0, 0, green}, {w/2 - 1, 0, green}, {0, h/2 - 1, green},
				{0, h / 2, white}, {w/2 - 1, h - 1, white},
			})
			checkBounds(t, c, want[1])
			c0 := mustOpen(t, o, 0)
			f, err = c0.Capture()
			if err != nil {
				t.Fatalf("capture monitor 0: %v", err)
			}
			checkFrame(t, f, w/2, h)
			checkPoints(t, f, []point{{1, 1, red}, {w/2 - 1, 0, red}, {0, h - 1, blue}, {w/2 - 1, h - 1, blue}})
			checkBounds(t, c0, want[0])

			if c, err := o.open(2); !errors.Is(err, ErrNoMonitor) {
				if err == nil {
					c.Close()
				}
				t.Errorf("open monitor 2 of 2: error %v, want ErrNoMonitor", err)
			}
			if c, err := o.open(-1); !errors.Is(err, ErrNoMonitor) {
				if err == nil {
					c.Close()
				}
				t.Errorf("open monitor -1: error %v, want ErrNoMonitor", err)
			}
		})
	}
}

func checkBounds(t *testing.T, c Capturer, d Display) {
	t.Helper()
	if x, y, w, h := c.Bounds(); x != d.X || y != d.Y || w != d.Width || h != d.Height {
		t.Errorf("Bounds() = %d,%d %dx%d, want %d,%d %dx%d (monitor %s)", x, y, w, h, d.X, d.Y, d.Width, d.Height, d.Name)
	}
}

// TestDisplaysOneMonitor checks the list on a plain server: one monitor, the
// whole screen, named after the server's output.
func TestDisplaysOneMonitor(t *testing.T) {
	display := xtest.StartXvfb(t, 800, 600)
	t.Setenv("DISPLAY", display)
	list, err := Displays()
	if err != nil {
		t.Fatalf("Displays: %v", err)
	}
	if len(list) != 1 || list[0].Index != 0 || list[0].X != 0 || list[0].Y != 0 || list[0].Width != 800 || list[0].Height != 600 || list[0].Name == "" {
		t.Fatalf("Displays() = %+v, want one 800x600 monitor at 0,0 with a name", list)
	}
	for _, o := range openers {
		checkBounds(t, mustOpen(t, o, 0), list[0])
	}
	t.Setenv("DISPLAY", xtest.FreeDisplay(t))
	if _, err := Displays(); !errors.Is(err, ErrNoDisplay) {
		t.Errorf("Displays without a server: %v, want ErrNoDisplay", err)
	}
}
