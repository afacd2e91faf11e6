//go:build linux

package capture

import (
	"bytes"
	"context"
	"errors"
	"image"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/tether-support/tether/internal/xtest"
	"golang.org/x/sys/unix"
)

// wakeLimit is how soon after a paint is flushed WaitChange must return
// on the damage-driven path. pollWakeLimit is the portable path's: it sees
// a change at its next poll, a grab of the whole monitor every
// pollInterval that takes tens of milliseconds on a busy machine (106 ms
// was seen once, with a browser test running alongside).
var wakeLimit, pollWakeLimit = 50 * time.Millisecond, 200 * time.Millisecond

func init() {
	if raceEnabled {
		wakeLimit, pollWakeLimit = 200*time.Millisecond, 400*time.Millisecond
	}
}

// wakeLimitOf is the wake limit of the capturer named name.
func wakeLimitOf(name string) time.Duration {
	if name == NamePortable {
		return pollWakeLimit
	}
	return wakeLimit
}

// painter is a real X client, on its own connection, that paints a window
// at a known place so tests can time how soon a capturer sees it.
type painter struct {
	conn   *xgb.Conn
	win    xproto.Window
	gc     xproto.Gcontext
	cmap   xproto.Colormap
	rect   image.Rectangle // root window coordinates
	pixels map[rgb]uint32
}

func newPainter(tb testing.TB, display string, r image.Rectangle) *painter {
	tb.Helper()
	conn, screen := xconn(tb, display)
	p := &painter{conn: conn, rect: r, cmap: screen.DefaultColormap, pixels: map[rgb]uint32{}}
	var err error
	if p.win, err = xproto.NewWindowId(conn); err != nil {
		tb.Fatal(err)
	}
	// Override-redirect and a black background: it shows at once, above
	// xpattern's window, with nothing else drawing into it.
	err = xproto.CreateWindowChecked(conn, screen.RootDepth, p.win, screen.Root,
		int16(r.Min.X), int16(r.Min.Y), uint16(r.Dx()), uint16(r.Dy()), 0,
		xproto.WindowClassInputOutput, screen.RootVisual,
		xproto.CwBackPixel|xproto.CwOverrideRedirect, []uint32{screen.BlackPixel, 1}).Check()
	if err != nil {
		tb.Fatalf("create painter window: %v", err)
	}
	if p.gc, err = xproto.NewGcontextId(conn); err != nil {
		tb.Fatal(err)
	}
	if err := xproto.CreateGCChecked(conn, p.gc, xproto.Drawable(p.win), 0, nil).Check(); err != nil {
		tb.Fatalf("create painter GC: %v", err)
	}
	if err := xproto.MapWindowChecked(conn, p.win).Check(); err != nil {
		tb.Fatalf("map painter window: %v", err)
	}
	return p
}

// paint fills the window with c and returns when the fill request was
// written to the server, once the server has executed it.
func (p *painter) paint(tb testing.TB, c rgb) time.Time {
	tb.Helper()
	pixel, ok := p.pixels[c]
	if !ok {
		reply, err := xproto.AllocColor(p.conn, p.cmap, uint16(c.r)*0x101, uint16(c.g)*0x101, uint16(c.b)*0x101).Reply()
		if err != nil {
			tb.Fatalf("allocate %v: %v", c, err)
		}
		pixel = reply.Pixel
		p.pixels[c] = pixel
	}
	xproto.ChangeGC(p.conn, p.gc, xproto.GcForeground, []uint32{pixel})
	// xgb returns from a request once it is written to the socket.
	xproto.PolyFillRectangle(p.conn, xproto.Drawable(p.win), p.gc,
		[]xproto.Rectangle{{Width: uint16(p.rect.Dx()), Height: uint16(p.rect.Dy())}})
	flushed := time.Now()
	if _, err := xproto.GetInputFocus(p.conn).Reply(); err != nil {
		tb.Fatalf("sync painter: %v", err)
	}
	return flushed
}

// settle captures until WaitChange stops reporting changes, so a test
// starts from a picture the capturer has seen. The X11 path may report
// damage drawn before the last Capture once more.
func settle(tb testing.TB, c Capturer) {
	tb.Helper()
	for i := 0; i < 5; i++ {
		if _, err := c.Capture(); err != nil {
			tb.Fatalf("capture: %v", err)
		}
		changed, err := c.WaitChange(context.Background(), 150*time.Millisecond)
		if err != nil {
			tb.Fatalf("wait change: %v", err)
		}
		if !changed {
			return
		}
	}
	tb.Fatalf("%s: the screen keeps changing with nothing drawing", c.Name())
}

type waitResult struct {
	changed bool
	err     error
	at      time.Time
}

// waitAsync runs WaitChange in a goroutine the test owns: the result
// channel is always read before the test ends.
func waitAsync(c Capturer, ctx context.Context, timeout time.Duration) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		changed, err := c.WaitChange(ctx, timeout)
		ch <- waitResult{changed, err, time.Now()}
	}()
	return ch
}

// paintAndTime paints c while WaitChange is blocked and returns how long
// after the paint was flushed WaitChange returned true.
func paintAndTime(tb testing.TB, capt Capturer, p *painter, c rgb, blockFor time.Duration) time.Duration {
	tb.Helper()
	res := waitAsync(capt, context.Background(), 5*time.Second)
	// Let WaitChange block (and the portable path settle into its polls)
	// before painting.
	time.Sleep(blockFor)
	flushed := p.paint(tb, c)
	r := <-res
	if r.err != nil || !r.changed {
		tb.Fatalf("%s: WaitChange after a paint = %v, %v; want true", capt.Name(), r.changed, r.err)
	}
	return r.at.Sub(flushed)
}

func expectStill(t *testing.T, c Capturer, timeout time.Duration, times int) {
	t.Helper()
	for i := 0; i < times; i++ {
		start := time.Now()
		changed, err := c.WaitChange(context.Background(), timeout)
		took := time.Since(start)
		if err != nil || changed {
			t.Fatalf("%s: WaitChange %d on a still screen = %v, %v; want false, nil", c.Name(), i, changed, err)
		}
		if took < timeout || took > timeout+100*time.Millisecond {
			t.Errorf("%s: WaitChange with timeout %v returned after %v", c.Name(), timeout, took)
		}
	}
}

func TestWaitChange(t *testing.T) {
	const w, h = 640, 480
	display := xtest.StartXvfb(t, w, h)
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	conn, screen := xconn(t, display)
	warp(t, conn, screen.Root, 50, 50)
	p := newPainter(t, display, image.Rect(400, 300, 464, 364))

	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			c := mustOpen(t, o, 0)
			// Nothing captured yet: everything is new.
			if changed, err := c.WaitChange(context.Background(), time.Hour); !changed || err != nil {
				t.Fatalf("WaitChange before the first Capture = %v, %v; want true at once", changed, err)
			}
			settle(t, c)

			t.Run("still screen", func(t *testing.T) {
				expectStill(t, c, 200*time.Millisecond, 3)
				if changed, err := c.WaitChange(context.Background(), 0); changed || err != nil {
					t.Errorf("WaitChange with no timeout = %v, %v; want false at once", changed, err)
				}
			})

			t.Run("paint", func(t *testing.T) {
				var lat []time.Duration
				for i, col := range []rgb{red, green, blue, white, red} {
					lat = append(lat, paintAndTime(t, c, p, col, 30*time.Millisecond))
					// Until a Capture picks the change up, it stays news.
					if changed, err := c.WaitChange(context.Background(), 0); !changed || err != nil {
						t.Fatalf("second WaitChange before Capture = %v, %v; want true", changed, err)
					}
					f, err := c.Capture()
					if err != nil {
						t.Fatal(err)
					}
					if got := pixel(f, 432, 332); got != col {
						t.Fatalf("paint %d: captured %v where %v was painted", i, got, col)
					}
				}
				t.Logf("%s: WaitChange returned %v after the paints were flushed", c.Name(), lat)
				// One slow wake of five is the machine (a busy CI runner
				// stalls a process now and then); a slow capturer is slow
				// every time.
				slices.Sort(lat)
				if m, limit := lat[len(lat)-2], wakeLimitOf(c.Name()); m > limit {
					t.Errorf("%s: second slowest wake %v after a paint, want < %v", c.Name(), m, limit)
				}
				expectStill(t, c, 100*time.Millisecond, 1)
			})

			t.Run("change before Capture is kept", func(t *testing.T) {
				paintAndTime(t, c, p, green, 0)
				// Painted after WaitChange returned and before Capture.
				p.paint(t, blue)
				f, err := c.Capture()
				if err != nil {
					t.Fatal(err)
				}
				got := pixel(f, 432, 332)
				changed, err := c.WaitChange(context.Background(), time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if o.name == NameXShm && got != blue {
					// Capture takes the server's damage itself before it
					// grabs: the blue paint is in the picture.
					t.Errorf("Capture after a paint between WaitChange and Capture showed %v, not blue", got)
				} else if got != blue && !changed {
					// The portable path may hand out the picture its
					// poll took, from before the blue paint; then the
					// next wait must report the paint.
					t.Errorf("Capture showed %v, not the blue painted before it, and WaitChange reported no change", got)
				}
				settle(t, c)
				f, err = c.Capture()
				if err != nil {
					t.Fatal(err)
				}
				if got := pixel(f, 432, 332); got != blue {
					t.Errorf("after settling, captured %v where blue was painted last", got)
				}
			})

			t.Run("pointer", func(t *testing.T) {
				settle(t, c)
				res := waitAsync(c, context.Background(), time.Second)
				time.Sleep(30 * time.Millisecond)
				move(t, conn, screen.Root, 200, 150)
				moved := time.Now()
				r := <-res
				if r.err != nil {
					t.Fatal(r.err)
				}
				if o.name == NameXShm {
					if !r.changed || r.at.Sub(moved) > wakeLimit {
						t.Errorf("WaitChange after the pointer moved = %v after %v; want true within %v (the cursor is in the picture)", r.changed, r.at.Sub(moved), wakeLimit)
					}
				} else if r.changed {
					// kbinani/screenshot draws no cursor: nothing changed.
					t.Errorf("portable WaitChange reported a change when only the pointer moved")
				}
				settle(t, c)
				expectStill(t, c, 100*time.Millisecond, 1)
			})
			t.Run("paint with pointer moves keeps watching", func(t *testing.T) {
				// A pointer move reported while damage is pending must not
				// leave that damage untaken: the server would report no more,
				// and later paints would go unseen.
				for i := range 10 {
					p.paint(t, []rgb{red, green}[i%2])
					warp(t, conn, screen.Root, 100+i*7, 120+i*3)
					if changed, err := c.WaitChange(context.Background(), time.Second); err != nil || !changed {
						t.Fatalf("round %d: WaitChange after paint and move = %v, %v", i, changed, err)
					}
					settle(t, c)
					if lat := paintAndTime(t, c, p, []rgb{blue, white}[i%2], 5*time.Millisecond); o.name == NameXShm && lat > wakeLimit {
						t.Fatalf("round %d: a paint after a pointer move woke WaitChange after %v, want within %v", i, lat, wakeLimit)
					}
					settle(t, c)
				}
			})
		})
	}
}

// TestWaitChangeLosesNothing races a painter against a capture loop: once
// the painter stops, the loop must end up with its last colour.
func TestWaitChangeLosesNothing(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	conn, screen := xconn(t, display)
	warp(t, conn, screen.Root, 10, 10)
	p := newPainter(t, display, image.Rect(100, 100, 200, 200))
	colours := []rgb{red, green, blue, white}

	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			c := mustOpen(t, o, 0)
			settle(t, c)
			var wg sync.WaitGroup
			var last rgb
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Intervals from 0 to 9 ms land anywhere in the loop:
				// during waits, between a wake and its Capture, during
				// grabs.
				for i := 0; i < 100; i++ {
					last = colours[i%len(colours)]
					p.paint(t, last)
					time.Sleep(time.Duration(i*7%10) * time.Millisecond)
				}
			}()
			var seen rgb
			frames := 0
			captureChanges(t, c, func(f *Frame) bool {
				seen = pixel(f, 150, 150)
				frames++
				return true
			})
			wg.Wait()
			t.Logf("%s: %d frames for 100 paints", c.Name(), frames)
			if seen != last {
				t.Errorf("%s: the last frame shows %v, but %v was painted last: a change was lost", c.Name(), seen, last)
			}
		})
	}
}

// TestChangedShowsEverything: once the screen is still, the last frame and
// what a viewer built by taking from each frame only what Frame.Changed
// bounds are both the screen, after a window was painted and the cursor
// moved at any moment (the X11 path grabs only the changed areas); and a
// paint on the X11 path marks little more than the painted window and the
// cursor.
func TestChangedShowsEverything(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	conn, screen := xconn(t, display)
	warp(t, conn, screen.Root, 10, 10)
	window := image.Rect(100, 100, 200, 200)
	p := newPainter(t, display, window)
	colours := []rgb{red, green, blue, white}

	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			c := mustOpen(t, o, 0)
			settle(t, c)
			f, err := c.Capture()
			if err != nil {
				t.Fatal(err)
			}
			shown := slices.Clone(f.Pix)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 60; i++ {
					p.paint(t, colours[i%len(colours)])
					if i%3 == 0 {
						warp(t, conn, screen.Root, 20+i*4, 30+i*2)
					}
					time.Sleep(time.Duration(i*7%10) * time.Millisecond)
				}
			}()
			frames, small := 0, 0
			var last *Frame
			captureChanges(t, c, func(f *Frame) bool {
				frames++
				if f.Changed.Dx()*f.Changed.Dy() <= window.Dx()*window.Dy()*2 {
					small++
				}
				r := f.Changed
				for y := r.Min.Y; y < r.Max.Y; y++ {
					copy(shown[y*f.Stride+4*r.Min.X:], f.Pix[y*f.Stride+4*r.Min.X:y*f.Stride+4*r.Max.X])
				}
				last = f
				return true
			})
			wg.Wait()
			t.Logf("%s: %d frames, %d with a changed area under twice the window's", c.Name(), frames, small)
			if last == nil {
				t.Fatalf("%s: no frame for 60 paints", c.Name())
			}
			// The screen as a capturer that never saw it before grabs it.
			screen, err := mustOpen(t, o, 0).Capture()
			if err != nil {
				t.Fatal(err)
			}
			if at, ok := differs(screen, shown); ok {
				t.Errorf("%s: pixel %v of the still screen differs from what the changed areas built", c.Name(), at)
			}
			if at, ok := differs(screen, last.Pix); ok {
				t.Errorf("%s: pixel %v of the still screen differs from the last frame", c.Name(), at)
			}
			if c.Name() == NameXShm && small < frames/2 {
				t.Errorf("%s: only %d of %d frames marked a small area changed; the paints cover %v", c.Name(), small, frames, window)
			}
		})
	}
}

// captureChanges captures every change WaitChange reports and hands the
// frame to each, until the screen stays still for 300 ms or each returns
// false.
func captureChanges(t *testing.T, c Capturer, each func(*Frame) bool) {
	t.Helper()
	for {
		changed, err := c.WaitChange(context.Background(), 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if !changed {
			return // the painters are done and the picture is still
		}
		f, err := c.Capture()
		if err != nil {
			t.Fatal(err)
		}
		if !each(f) {
			return
		}
	}
}

// differs finds a pixel of f that is not the one in pix (same layout).
func differs(f *Frame, pix []byte) (image.Point, bool) {
	for y := 0; y < f.Height; y++ {
		for x := 0; x < f.Width; x++ {
			i := y*f.Stride + 4*x
			if !bytes.Equal(f.Pix[i:i+3], pix[i:i+3]) {
				return image.Pt(x, y), true
			}
		}
	}
	return image.Point{}, false
}

// TestWaitChangeMonitor checks that a capturer of one monitor wakes for
// changes on it and sleeps through changes on the other.
func TestWaitChangeMonitor(t *testing.T) {
	const w, h = 1280, 480
	display := xtest.StartXvfb(t, w, h)
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	xtest.SplitMonitors(t, display)
	conn, screen := xconn(t, display)
	warp(t, conn, screen.Root, 100, 400) // left monitor, far from the right one
	left := newPainter(t, display, image.Rect(300, 100, 400, 200))
	right := newPainter(t, display, image.Rect(w/2+300, 100, w/2+400, 200))

	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			// Start from black painters: each paint below is a change.
			left.paint(t, rgb{})
			right.paint(t, rgb{})
			c := mustOpen(t, o, 1)
			settle(t, c)
			res := waitAsync(c, context.Background(), 300*time.Millisecond)
			time.Sleep(30 * time.Millisecond)
			left.paint(t, red)
			warp(t, conn, screen.Root, 200, 300)
			if r := <-res; r.err != nil || r.changed {
				t.Errorf("monitor 1 WaitChange after a paint and a pointer move on monitor 0 = %v, %v; want false", r.changed, r.err)
			}
			if d, limit := paintAndTime(t, c, right, green, 30*time.Millisecond), wakeLimitOf(c.Name()); d > limit {
				t.Errorf("monitor 1 woke %v after a paint on it, want < %v", d, limit)
			}
			f, err := c.Capture()
			if err != nil {
				t.Fatal(err)
			}
			if got := pixel(f, 350, 150); got != green {
				t.Errorf("monitor 1 pixel 350,150 = %v, want the green painted at %d,150", got, w/2+350)
			}
			if o.name == NameXShm {
				settle(t, c)
				res := waitAsync(c, context.Background(), time.Second)
				time.Sleep(30 * time.Millisecond)
				warp(t, conn, screen.Root, w/2+100, 300)
				if r := <-res; r.err != nil || !r.changed {
					t.Errorf("monitor 1 WaitChange after the pointer entered it = %v, %v; want true", r.changed, r.err)
				}
				warp(t, conn, screen.Root, 100, 400)
			}
		})
	}
}

func TestWaitChangeEnds(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	xtest.StartPattern(t, display)
	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			c := mustOpen(t, o, 0)
			settle(t, c)

			ctx, cancel := context.WithCancel(context.Background())
			res := waitAsync(c, ctx, time.Hour)
			time.Sleep(30 * time.Millisecond)
			cancel()
			select {
			case r := <-res:
				if !errors.Is(r.err, context.Canceled) || r.changed {
					t.Errorf("WaitChange after cancel = %v, %v; want context.Canceled", r.changed, r.err)
				}
			case <-time.After(time.Second):
				t.Fatal("WaitChange still blocked 1s after its context was cancelled")
			}
			if _, err := c.WaitChange(ctx, time.Hour); !errors.Is(err, context.Canceled) {
				t.Errorf("WaitChange with a cancelled context: %v, want context.Canceled", err)
			}

			res = waitAsync(c, context.Background(), time.Hour)
			time.Sleep(30 * time.Millisecond)
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-res:
				if !errors.Is(r.err, ErrClosed) {
					t.Errorf("WaitChange during Close = %v, %v; want ErrClosed", r.changed, r.err)
				}
			case <-time.After(time.Second):
				t.Fatal("WaitChange still blocked 1s after Close")
			}
			if _, err := c.WaitChange(context.Background(), time.Second); !errors.Is(err, ErrClosed) {
				t.Errorf("WaitChange after Close: %v, want ErrClosed", err)
			}
			if _, err := c.Capture(); !errors.Is(err, ErrClosed) {
				t.Errorf("Capture after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// BenchmarkDamageLatency times how long after another X client's paint is
// flushed WaitChange returns, reported as ms/op (mean) and p95-ms.
func BenchmarkDamageLatency(b *testing.B) {
	for _, o := range openers {
		b.Run(o.name, func(b *testing.B) {
			display := xtest.StartXvfb(b, 1920, 1080)
			b.Setenv("DISPLAY", display)
			xtest.StartPattern(b, display)
			p := newPainter(b, display, image.Rect(900, 500, 1000, 600))
			c := mustOpen(b, o, 0)
			settle(b, c)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// A different pause each time, so paints fall anywhere in
				// the portable path's poll cycle.
				lat = append(lat, paintAndTime(b, c, p, []rgb{red, green}[i%2], time.Duration(5+i*7%20)*time.Millisecond))
				if _, err := c.Capture(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			var sum time.Duration
			for _, d := range lat {
				sum += d
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(sum/time.Duration(len(lat))), "ms/op")
			b.ReportMetric(ms(lat[len(lat)*95/100]), "p95-ms")
			b.ReportMetric(0, "ns/op") // the pauses make ns/op meaningless
		})
	}
}

// TestWaitChangeTimeoutUnderSignals checks that a wait on a still screen
// ends at its timeout while signals keep interrupting it, as the Go
// runtime's preemption signals do to a thread waiting in C: an interrupted
// wait goes on for what is left of its time, not for all of it again.
func TestWaitChangeTimeoutUnderSignals(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			c := mustOpen(t, o, 0)
			settle(t, c)
			const timeout = 300 * time.Millisecond
			thread := make(chan int, 1)
			res := make(chan waitResult, 1)
			start := time.Now()
			go func() {
				// The wait runs on this thread, which the test signals.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				thread <- unix.Gettid()
				changed, err := c.WaitChange(context.Background(), timeout)
				res <- waitResult{changed, err, time.Now()}
			}()
			tid := <-thread
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			giveUp := time.After(3 * time.Second)
			for {
				select {
				case r := <-res:
					if r.err != nil || r.changed {
						t.Fatalf("WaitChange on a still screen = %v, %v; want false, nil", r.changed, r.err)
					}
					if took := r.at.Sub(start); took > timeout+200*time.Millisecond {
						t.Errorf("WaitChange with a %v timeout returned after %v under signals", timeout, took)
					}
					return
				case <-tick.C:
					unix.Tgkill(os.Getpid(), tid, unix.SIGURG) // the signal Go preempts with; it ignores stray ones
				case <-giveUp:
					t.Fatalf("WaitChange with a %v timeout still waiting after 3s of signals", timeout)
				}
			}
		})
	}
}
