//go:build linux && cgo

package capture

import (
	"context"
	"errors"
	"image"
	"runtime"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xproto"
	"github.com/tether-support/tether/internal/xtest"
)

// openName is the path Open must choose against Xvfb.
const openName = NameXShm

func TestXShmDrawsCursor(t *testing.T) {
	const w, h = 640, 480
	display := xtest.StartXvfb(t, w, h)
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	conn, screen := xconn(t, display)
	x := mustOpen(t, opener{NameXShm, Open}, 0)
	p := mustOpen(t, opener{NamePortable, OpenPortable}, 0)

	// nonRed counts pixels that differ from the red quadrant background
	// in a box around (cx, cy).
	nonRed := func(c Capturer, cx, cy int) int {
		f, err := c.Capture()
		if err != nil {
			t.Fatalf("capture with %s: %v", c.Name(), err)
		}
		n := 0
		for y := cy - 24; y < cy+24; y++ {
			for x := cx - 24; x < cx+24; x++ {
				if pixel(f, x, y) != red {
					n++
				}
			}
		}
		return n
	}

	warp(t, conn, screen.Root, 100, 100)
	if n := nonRed(x, 100, 100); n < 20 {
		t.Errorf("xshm: %d pixels around the pointer differ from the background, want the cursor (>= 20)", n)
	}
	if n := nonRed(p, 100, 100); n != 0 {
		t.Errorf("screenshot: %d pixels around the pointer differ from the background; this path draws no cursor, so the background itself is wrong", n)
	}
	// The cursor follows the pointer and leaves nothing behind.
	warp(t, conn, screen.Root, 200, 60)
	if n := nonRed(x, 100, 100); n != 0 {
		t.Errorf("xshm: %d non-background pixels left where the pointer was", n)
	}
	if n := nonRed(x, 200, 60); n < 20 {
		t.Errorf("xshm: %d pixels around the moved pointer differ from the background, want the cursor", n)
	}
}

// TestXShmChangedCursor: a cursor drawn again where it was changes
// nothing, so a still screen's capture reports no change (nor does the
// portable path's); a moved cursor marks its old and new place.
func TestXShmChangedCursor(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	conn, screen := xconn(t, display)
	warp(t, conn, screen.Root, 100, 100)
	x := mustOpen(t, opener{NameXShm, Open}, 0)
	settle(t, x)
	capture := func() image.Rectangle {
		t.Helper()
		f, err := x.Capture()
		if err != nil {
			t.Fatal(err)
		}
		return f.Changed
	}
	if r := capture(); !r.Empty() {
		t.Errorf("a still screen with the cursor on it: Changed %v, want empty", r)
	}
	warp(t, conn, screen.Root, 300, 200)
	r := capture()
	if !image.Pt(100, 100).In(r) || !image.Pt(300, 200).In(r) {
		t.Errorf("the cursor moved from (100,100) to (300,200): Changed %v, want both", r)
	}
	if r := capture(); !r.Empty() {
		t.Errorf("nothing since: Changed %v, want empty", r)
	}
	p := mustOpen(t, opener{NamePortable, OpenPortable}, 0)
	settle(t, p)
	if f, err := p.Capture(); err != nil {
		t.Fatal(err)
	} else if !f.Changed.Empty() {
		t.Errorf("%s: a capture of the still screen: Changed %v, want empty", p.Name(), f.Changed)
	}
}

// TestXShmFollowsResize checks that the segment is reallocated when the
// screen size changes.
func TestXShmFollowsResize(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	conn, screen := xconn(t, display)
	warp(t, conn, screen.Root, 100, 100)
	if err := randr.Init(conn); err != nil {
		t.Fatalf("RandR: %v", err)
	}
	c := mustOpen(t, opener{NameXShm, Open}, 0)

	for _, size := range [][2]int{{320, 240}, {640, 480}} {
		w, h := size[0], size[1]
		resizeScreen(t, conn, screen.Root, w, h)
		// The ConfigureNotify travels asynchronously; allow it a moment.
		var f *Frame
		deadline := time.Now().Add(5 * time.Second)
		for {
			var err error
			f, err = c.Capture()
			if err == nil && f.Width == w {
				break
			}
			if time.Now().After(deadline) {
				if err != nil {
					t.Fatalf("capture after resize to %dx%d: %v", w, h, err)
				}
				t.Fatalf("frames stay %dx%d after resize to %dx%d", f.Width, f.Height, w, h)
			}
			time.Sleep(10 * time.Millisecond)
		}
		checkFrame(t, f, w, h)
		if gw, gh := c.Size(); gw != w || gh != h {
			t.Errorf("Size() = %dx%d after resize to %dx%d", gw, gh, w, h)
		}
		if w == 320 {
			// xpattern's window keeps its 640x480 quadrants, so the shrunk
			// screen shows only the red one.
			checkPoints(t, f, []point{{w - 1, 0, red}, {0, h - 1, red}, {w - 1, h - 1, red}, {w/2 + 10, h/2 + 10, red}})
		} else {
			checkPoints(t, f, quadrantPoints(w, h))
		}
	}
}

// resizeScreen changes the size of the root window as `xrandr --fb` does:
// a CRTC that would not fit is switched off first.
func resizeScreen(t *testing.T, conn *xgb.Conn, root xproto.Window, w, h int) {
	t.Helper()
	res, err := randr.GetScreenResources(conn, root).Reply()
	if err != nil {
		t.Fatalf("RandR screen resources: %v", err)
	}
	for _, crtc := range res.Crtcs {
		info, err := randr.GetCrtcInfo(conn, crtc, res.ConfigTimestamp).Reply()
		if err != nil {
			t.Fatalf("RandR CRTC info: %v", err)
		}
		if info.Mode != 0 && (int(info.X)+int(info.Width) > w || int(info.Y)+int(info.Height) > h) {
			_, err := randr.SetCrtcConfig(conn, crtc, 0, res.ConfigTimestamp, 0, 0, 0, randr.RotationRotate0, nil).Reply()
			if err != nil {
				t.Fatalf("switch off CRTC before resizing: %v", err)
			}
		}
	}
	if err := randr.SetScreenSizeChecked(conn, root, uint16(w), uint16(h), uint32(w/4), uint32(h/4)).Check(); err != nil {
		t.Fatalf("resize screen to %dx%d: %v", w, h, err)
	}
}

// TestXServerGone checks that losing the X server is an error, not the end
// of the process (Xlib's default is to exit).
func TestXServerGone(t *testing.T) {
	server := xtest.StartXvfbServer(t, 320, 240)
	t.Setenv("DISPLAY", server.Display)
	c := mustOpen(t, opener{NameXShm, Open}, 0)
	if _, err := c.Capture(); err != nil {
		t.Fatalf("capture while the server runs: %v", err)
	}
	server.Stop()
	// Xlib meets the dead connection on one OS thread and Close runs on
	// another, as in a program where capture and shutdown are different
	// goroutines: the thread that saw the error ends with its goroutine.
	errs := make(chan error, 3)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		for i := 0; i < 3; i++ {
			_, err := c.Capture()
			errs <- err
		}
	}()
	var err error
	for i := 0; i < 3; i++ {
		if err = <-errs; err == nil {
			t.Fatalf("capture %d after the X server exited succeeded", i)
		}
	}
	if !errors.Is(err, ErrNoDisplay) {
		t.Errorf("error after the server exited: %v, want it to wrap ErrNoDisplay", err)
	}
	closeWithin(t, c, 5*time.Second)
	if _, err := c.Capture(); err == nil {
		t.Error("capture after Close succeeded")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestOpenOnIdleServer: on an X server with nothing else on it, which
// resets whenever its last client leaves (and drops the connections it is
// offered meanwhile), the capturer still opens every time, though the
// last client to leave is its own probe, or the capturer closed just
// before. One open in three failed.
func TestOpenOnIdleServer(t *testing.T) {
	server := xtest.StartXvfbServer(t, 320, 240, xtest.ResetWhenIdle)
	t.Setenv("DISPLAY", server.Display)
	for i := range 30 {
		c, err := Open(0)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if _, err := c.Capture(); err != nil {
			t.Fatalf("capture %d: %v", i, err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
	}
}

// TestOpenFallsBack checks that Open still captures, through the portable
// path, from an X server without MIT-SHM (as over a remote connection).
func TestOpenFallsBack(t *testing.T) {
	const w, h = 640, 480
	display := xtest.StartXvfbServer(t, w, h, "-extension", "MIT-SHM").Display
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	conn, screen := xconn(t, display)
	warp(t, conn, screen.Root, 100, 100)
	c := mustOpen(t, opener{NamePortable, Open}, 0)
	f, err := c.Capture()
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	checkFrame(t, f, w, h)
	checkPoints(t, f, quadrantPoints(w, h))
}

// BenchmarkCaptureXShm captures after the whole screen changed: the
// damage check, the grab of the whole monitor and the cursor.
func BenchmarkCaptureXShm(b *testing.B) { benchCaptureChange(b, image.Rect(0, 0, 1920, 1080)) }

// BenchmarkCaptureXShmArea captures after a 256x192 window changed: only
// that is grabbed.
func BenchmarkCaptureXShmArea(b *testing.B) { benchCaptureChange(b, image.Rect(832, 444, 1088, 636)) }

// benchCaptureChange times Capture after the X server reported changed as
// damaged.
func benchCaptureChange(b *testing.B, changed image.Rectangle) {
	benchDisplay(b)
	x := mustOpen(b, opener{NameXShm, Open}, 0).(*xshm)
	if _, err := x.Capture(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(4 * changed.Dx() * changed.Dy()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.mu.Lock()
		x.dirty = changed
		x.mu.Unlock()
		f, err := x.Capture()
		if err != nil {
			b.Fatal(err)
		}
		if !changed.In(f.Changed) {
			b.Fatalf("Changed %v, want it to cover %v", f.Changed, changed)
		}
	}
}

// BenchmarkRawXShmGetImage times the XShmGetImage call alone, without the
// resize check and the cursor: the floor for capture.
func BenchmarkRawXShmGetImage(b *testing.B) {
	benchDisplay(b)
	x := mustOpen(b, opener{NameXShm, Open}, 0).(*xshm)
	w, h := x.Size()
	b.SetBytes(int64(4 * w * h))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := x.grab(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWaitChangeXServerGone checks that a WaitChange blocked when the X
// server exits returns an error instead of hanging or ending the process.
func TestWaitChangeXServerGone(t *testing.T) {
	server := xtest.StartXvfbServer(t, 320, 240)
	t.Setenv("DISPLAY", server.Display)
	c := mustOpen(t, opener{NameXShm, Open}, 0)
	settle(t, c)
	res := waitAsync(c, context.Background(), time.Hour)
	time.Sleep(30 * time.Millisecond)
	server.Stop()
	select {
	case r := <-res:
		if !errors.Is(r.err, ErrNoDisplay) {
			t.Errorf("WaitChange when the server exited = %v, %v; want an error wrapping ErrNoDisplay", r.changed, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitChange still blocked 5s after the X server exited")
	}
	closeWithin(t, c, 5*time.Second)
}

// closeWithin closes c and fails the test if that takes longer than d (a
// hang in Xlib would otherwise hang the whole test binary).
func closeWithin(t *testing.T, c Capturer, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("close after the server exited: %v", err)
		}
	case <-time.After(d):
		t.Fatalf("Close still blocked %v after the X server exited", d)
	}
}

// TestWaitChangeWithoutDamage checks the X11 path on a server without
// DAMAGE: it keeps XShm and polls, and still sees paints and the cursor.
func TestWaitChangeWithoutDamage(t *testing.T) {
	display := xtest.StartXvfbServer(t, 640, 480, "-extension", "DAMAGE").Display
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	conn, screen := xconn(t, display)
	warp(t, conn, screen.Root, 50, 50)
	p := newPainter(t, display, image.Rect(400, 300, 464, 364))
	c := mustOpen(t, opener{NameXShm, Open}, 0)
	if c.(*xshm).watch != nil {
		t.Fatal("the capturer watches for damage on a server without DAMAGE")
	}
	settle(t, c)
	expectStill(t, c, 150*time.Millisecond, 2)
	if d := paintAndTime(t, c, p, green, 20*time.Millisecond); d > wakeLimit {
		t.Errorf("WaitChange returned %v after a paint, want < %v", d, wakeLimit)
	}
	f, err := c.Capture()
	if err != nil {
		t.Fatal(err)
	}
	if got := pixel(f, 432, 332); got != green {
		t.Errorf("captured %v where green was painted", got)
	}
	if win := image.Rect(400, 300, 464, 364); !win.In(f.Changed) || f.Changed.Dx()*f.Changed.Dy() > 4*win.Dx()*win.Dy() {
		t.Errorf("Changed %v after a paint of %v, want the tiles around it", f.Changed, win)
	}
	if f, err := c.Capture(); err != nil {
		t.Fatal(err)
	} else if !f.Changed.Empty() {
		t.Errorf("a capture of the still screen: Changed %v, want empty", f.Changed)
	}
	expectStill(t, c, 100*time.Millisecond, 1)
	res := waitAsync(c, context.Background(), time.Second)
	time.Sleep(20 * time.Millisecond)
	warp(t, conn, screen.Root, 200, 100)
	if r := <-res; r.err != nil || !r.changed {
		t.Errorf("WaitChange after the pointer moved = %v, %v; want true (the cursor is in the picture)", r.changed, r.err)
	}
}

// TestWaitChangeCursorShape checks that a new cursor image under a still
// pointer counts as a change on the path that draws the cursor.
func TestWaitChangeCursorShape(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	p := newPainter(t, display, image.Rect(100, 100, 200, 200))
	conn, screen := xconn(t, display)
	warp(t, conn, screen.Root, 150, 150)
	c := mustOpen(t, opener{NameXShm, Open}, 0)
	settle(t, c)

	// The watch cursor from the core cursor font, on the painter's window
	// under the pointer.
	font, err := xproto.NewFontId(conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := xproto.OpenFontChecked(conn, font, uint16(len("cursor")), "cursor").Check(); err != nil {
		t.Fatalf("open cursor font: %v", err)
	}
	cursor, err := xproto.NewCursorId(conn)
	if err != nil {
		t.Fatal(err)
	}
	const xcWatch = 150
	if err := xproto.CreateGlyphCursorChecked(conn, cursor, font, font, xcWatch, xcWatch+1, 0, 0, 0, 0xffff, 0xffff, 0xffff).Check(); err != nil {
		t.Fatalf("create cursor: %v", err)
	}
	res := waitAsync(c, context.Background(), 2*time.Second)
	time.Sleep(30 * time.Millisecond)
	if err := xproto.ChangeWindowAttributesChecked(p.conn, p.win, xproto.CwCursor, []uint32{uint32(cursor)}).Check(); err != nil {
		t.Fatalf("set window cursor: %v", err)
	}
	changed := time.Now()
	r := <-res
	if r.err != nil || !r.changed || r.at.Sub(changed) > wakeLimit {
		t.Errorf("%s: WaitChange after the cursor image changed = %v, %v after %v; want true within %v", c.Name(), r.changed, r.err, r.at.Sub(changed), wakeLimit)
	}
}

// BenchmarkWatchPointer times the QueryPointer round trip WaitChange makes
// every pointerPoll while it waits.
func BenchmarkWatchPointer(b *testing.B) {
	display := xtest.StartXvfb(b, 640, 480)
	b.Setenv("DISPLAY", display)
	x := mustOpen(b, opener{NameXShm, Open}, 0).(*xshm)
	w := x.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := w.pointer(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWaitChangeFollowsThePointer checks how WaitChange learns that the
// pointer moved. With XInput 2.1 raw motion events it learns of a device's
// move at once from the server, sees a warp (which the server reports to
// no one) within pointerWarpPoll, and asks where a still pointer is only
// that often. Without them (here: no Generic Event Extension, which they
// arrive in) it asks every pointerPoll, and sees either within that.
func TestWaitChangeFollowsThePointer(t *testing.T) {
	for _, server := range []struct {
		name      string
		args      []string
		raw       bool
		every     time.Duration // how often a still pointer is asked for
		moveLimit time.Duration
	}{
		{"xinput", nil, true, pointerWarpPoll, wakeLimit},
		{"no-xinput", []string{"-extension", "Generic Event Extension"}, false, pointerPoll, pointerPoll + wakeLimit},
	} {
		t.Run(server.name, func(t *testing.T) {
			display := xtest.StartXvfbServer(t, 320, 240, server.args...).Display
			t.Setenv("DISPLAY", display)
			xtest.StartPattern(t, display)
			conn, screen := xconn(t, display)
			warp(t, conn, screen.Root, 50, 50)
			c := mustOpen(t, opener{NameXShm, Open}, 0)
			w := c.(*xshm).watch
			if w == nil {
				t.Fatal("no DAMAGE watch on a server with DAMAGE")
			}
			if w.rawMotion() != server.raw {
				t.Fatalf("the capturer takes raw motion events: %v, want %v", w.rawMotion(), server.raw)
			}
			asked := func() int {
				w.mu.Lock()
				defer w.mu.Unlock()
				return w.queries
			}
			settle(t, c)

			// In one long wait or in many short ones: each does not ask
			// anew.
			for _, waits := range []struct {
				timeout time.Duration
				times   int
			}{{time.Second, 1}, {20 * time.Millisecond, 50}} {
				before, start := asked(), time.Now()
				expectStill(t, c, waits.timeout, waits.times)
				took := time.Since(start)
				if n, limit := asked()-before, int(took/server.every)+2; n > limit {
					t.Errorf("%d waits of %v on a still screen asked for the pointer %d times in %v, want at most %d", waits.times, waits.timeout, n, took, limit)
				}
			}

			for _, m := range []struct {
				how   string
				do    func(x, y int)
				limit time.Duration
			}{
				{"moved", func(x, y int) { move(t, conn, screen.Root, x, y) }, server.moveLimit},
				{"warped", func(x, y int) { warp(t, conn, screen.Root, x, y) }, server.every + wakeLimit},
			} {
				for i := range 3 {
					settle(t, c)
					res := waitAsync(c, context.Background(), 2*time.Second)
					time.Sleep(30 * time.Millisecond)
					m.do(100+40*i, 100)
					at := time.Now()
					r := <-res
					if r.err != nil || !r.changed || r.at.Sub(at) > m.limit {
						t.Errorf("WaitChange after the pointer was %s = %v, %v after %v; want true within %v", m.how, r.changed, r.err, r.at.Sub(at), m.limit)
					}
				}
			}
		})
	}
}
