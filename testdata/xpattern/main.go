// Command xpattern is a test X client: it covers the whole root window of
// $DISPLAY with an override-redirect window and paints a known picture into
// it, so capture and encode tests can assert real pixels produced by a real X
// client. It is pure Go (github.com/jezek/xgb) so it builds without cgo.
//
// Modes:
//
//   - -mode pattern (default): the screen is split into four quadrants at
//     x = W/2 and y = H/2 (integer division; the left and top halves are the
//     ones with x < W/2 and y < H/2):
//     top-left red #ff0000, top-right green #00ff00,
//     bottom-left blue #0000ff, bottom-right white #ffffff.
//     The window is repainted on every Expose.
//   - -mode counter: the whole window is filled every -interval milliseconds
//     (default 16) with a grey whose level is the frame counter modulo 256
//     (R = G = B = counter % 256, starting at 0), so the screen changes on
//     every frame; benchmarks use it as a worst case for capture and encode.
//     With -bars the top quarter shows the counter instead, as black and
//     white bars a viewer can read back (see bars.go), and the grey fills
//     the rest.
//   - -mode input: a witness of injected input. The window starts black
//     #000000, takes the keyboard focus, and prints one line per input event
//     it receives (see input.go for the format), such as "button 1 down 640
//     360", "key down 38 a", "text a" or "wheel up". Every press of mouse
//     button 1, 2 or 3 toggles the window between black #000000 and white
//     #ffffff, repainted at once, and prints "colour #ffffff" (or #000000)
//     once the repaint has reached the server: input-to-pixel latency
//     benchmarks time a click until a viewer sees the new colour.
//
// With -geometry WxH+X+Y the window covers only that rectangle of the
// screen instead of all of it (in -mode input, a small window whose colour
// a click toggles, like a button).
//
// It prints "ready" on stdout once the first paint has reached the X server
// (and, in input mode, once it has the focus; tests wait for that line) and
// exits with status 0 on SIGTERM or SIGINT. With -log FILE every line it
// prints goes to FILE too, written as it is printed.
//
// With -stamp every line after "ready" ends in " @" and the wall-clock time
// it was printed, in microseconds since the Unix epoch (e.g. "colour
// #ffffff @1763900000123456": the time the new colour had reached the
// server), and -mode counter prints "paint N @T" once paint N has reached
// the server. Latency benchmarks compare these times with a browser's clock
// on the same machine.
//
// Build it with: go build -o /tmp/xpattern ./testdata/xpattern
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// Quadrant colours of -mode pattern as 0xRRGGBB. Tests in other packages
// assert exactly these values; change them together.
const (
	colourTopLeft     = 0xff0000 // red
	colourTopRight    = 0x00ff00 // green
	colourBottomLeft  = 0x0000ff // blue
	colourBottomRight = 0xffffff // white
)

// Colours of -mode input: the window starts black and every click toggles
// it. Tests in other packages assert exactly these values.
const (
	colourInputStart   = 0x000000 // black
	colourInputToggled = 0xffffff // white
)

type config struct {
	mode     string
	interval time.Duration
	bars     bool
	stamp    bool
	geometry string // WxH+X+Y, or "" for the whole screen
	display  string
	stdout   io.Writer
}

func main() {
	cfg := config{stdout: os.Stdout, display: os.Getenv("DISPLAY")}
	flag.StringVar(&cfg.mode, "mode", "pattern", `what to do: "pattern" (four coloured quadrants), "counter" (grey level changing every frame) or "input" (print the input events received)`)
	intervalMS := flag.Int("interval", 16, "milliseconds between repaints in -mode counter")
	logPath := flag.String("log", "", "also write every line printed on stdout to this file")
	flag.BoolVar(&cfg.bars, "bars", false, "in -mode counter, show the counter as black and white bars in the top quarter")
	flag.StringVar(&cfg.geometry, "geometry", "", "cover only this rectangle of the screen, as WxH+X+Y (default: the whole screen)")
	flag.BoolVar(&cfg.stamp, "stamp", false, "end every line with the wall-clock time in Unix microseconds; in -mode counter print a line per paint")
	flag.Parse()
	cfg.interval = time.Duration(*intervalMS) * time.Millisecond

	var logFile *os.File
	if *logPath != "" {
		var err error
		if logFile, err = os.Create(*logPath); err != nil {
			fmt.Fprintln(os.Stderr, "xpattern:", err)
			os.Exit(1)
		}
		// os.File does not buffer, and the file comes first: a line read
		// from stdout is already in the file.
		cfg.stdout = io.MultiWriter(logFile, os.Stdout)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, cfg)
	stop()
	if logFile != nil {
		if cerr := logFile.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close log: %w", cerr)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xpattern:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	if cfg.mode != "pattern" && cfg.mode != "counter" && cfg.mode != "input" {
		return fmt.Errorf("unknown -mode %q: use pattern, counter or input", cfg.mode)
	}
	if cfg.mode == "counter" && cfg.interval <= 0 {
		return fmt.Errorf("-interval must be positive, got %v", cfg.interval)
	}
	var geom xproto.Rectangle
	if cfg.geometry != "" {
		if n, _ := fmt.Sscanf(cfg.geometry, "%dx%d+%d+%d", &geom.Width, &geom.Height, &geom.X, &geom.Y); n != 4 || geom.Width == 0 || geom.Height == 0 {
			return fmt.Errorf("-geometry %q: want WIDTHxHEIGHT+X+Y, e.g. 256x192+100+100", cfg.geometry)
		}
	}
	conn, err := xgb.NewConnDisplay(cfg.display)
	if err != nil {
		return fmt.Errorf("connect to X display %q: %w", cfg.display, err)
	}
	// The event reader below ends when the connection is closed; closing
	// here and waiting for it keeps every goroutine owned. It stops
	// forwarding once done is closed, so it never blocks on a full channel
	// after run returned.
	events := make(chan xgb.Event, 256)
	readerDone := make(chan error, 1)
	done := make(chan struct{})
	defer func() {
		close(done)
		conn.Close()
		<-readerDone
	}()

	w, err := newWindow(conn, cfg.mode == "input", geom)
	if err != nil {
		return err
	}
	go func() { readerDone <- readEvents(conn, w.id, events, done) }()

	// The first Expose says the window is viewable; painting before that
	// could be lost. Input events cannot come before it either.
	for shown := false; !shown; {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			_, shown = ev.(xproto.ExposeEvent)
		case err := <-readerDone:
			readerDone <- err
			return fmt.Errorf("X connection closed before the window was shown: %w", err)
		}
	}

	var (
		counter uint32
		in      *inputWitness
	)
	if cfg.mode == "input" {
		if in, err = newInputWitness(conn, w, cfg.stdout); err != nil {
			return err
		}
		in.stamp = cfg.stamp
	}
	paint := func() error {
		switch cfg.mode {
		case "pattern":
			return w.paintPattern(conn)
		case "input":
			return in.paint()
		}
		if err := w.paintCounter(conn, counter, cfg.bars); err != nil {
			return err
		}
		if cfg.stamp {
			return stampf(cfg.stdout, "paint %d", counter)
		}
		return nil
	}
	if err := paint(); err != nil {
		return err
	}
	if in != nil {
		// Without a window manager nobody gives the window the focus, and
		// keys would go wherever the pointer is.
		if err := xproto.SetInputFocusChecked(conn, xproto.InputFocusPointerRoot, w.id, xproto.TimeCurrentTime).Check(); err != nil {
			return fmt.Errorf("take the keyboard focus: %w", err)
		}
	}
	fmt.Fprintln(cfg.stdout, "ready")

	var tick <-chan time.Time
	if cfg.mode == "counter" {
		t := time.NewTicker(cfg.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			if _, ok := ev.(xproto.ExposeEvent); ok {
				if err := paint(); err != nil {
					return err
				}
			} else if in != nil {
				if err := in.handle(ev); err != nil {
					return err
				}
			}
		case <-tick:
			counter++
			if err := paint(); err != nil {
				return err
			}
		case err := <-readerDone:
			readerDone <- err // for the deferred wait
			return fmt.Errorf("X connection lost: %w", err)
		}
	}
}

// readEvents forwards the last Expose event of each series for win, and
// every other event, in order until the connection closes.
func readEvents(conn *xgb.Conn, win xproto.Window, events chan<- xgb.Event, done <-chan struct{}) error {
	for {
		ev, xerr := conn.WaitForEvent()
		if ev == nil && xerr == nil {
			return errors.New("connection closed")
		}
		if xerr != nil {
			// An asynchronous X error means a request of ours failed; the
			// picture would be wrong, so it is fatal for a test client.
			return fmt.Errorf("X error: %v", xerr)
		}
		if e, ok := ev.(xproto.ExposeEvent); ok && (e.Window != win || e.Count != 0) {
			continue
		}
		select {
		case events <- ev:
		case <-done:
		}
	}
}

type window struct {
	id     xproto.Window
	gc     xproto.Gcontext
	width  uint16
	height uint16
	cmap   xproto.Colormap
	pixels [4]uint32 // quadrant colours as pixel values of the default visual
	black  uint32
	white  uint32
}

// newWindow makes the window at geom, or over the whole screen when geom
// is empty.
func newWindow(conn *xgb.Conn, input bool, geom xproto.Rectangle) (*window, error) {
	screen := xproto.Setup(conn).DefaultScreen(conn)
	if geom.Width == 0 {
		geom = xproto.Rectangle{Width: screen.WidthInPixels, Height: screen.HeightInPixels}
	}
	w := &window{width: geom.Width, height: geom.Height, cmap: screen.DefaultColormap}
	var err error
	if w.id, err = xproto.NewWindowId(conn); err != nil {
		return nil, fmt.Errorf("allocate window id: %w", err)
	}
	mask := uint32(xproto.EventMaskExposure)
	if input {
		mask |= xproto.EventMaskKeyPress | xproto.EventMaskKeyRelease | xproto.EventMaskButtonPress |
			xproto.EventMaskButtonRelease | xproto.EventMaskPointerMotion
	}
	// Override-redirect keeps any window manager from moving or decorating
	// the window, so it stays exactly where it is put.
	err = xproto.CreateWindowChecked(conn, screen.RootDepth, w.id, screen.Root,
		geom.X, geom.Y, w.width, w.height, 0, xproto.WindowClassInputOutput, screen.RootVisual,
		xproto.CwOverrideRedirect|xproto.CwEventMask,
		[]uint32{1, mask}).Check()
	if err != nil {
		return nil, fmt.Errorf("create window: %w", err)
	}
	if w.gc, err = xproto.NewGcontextId(conn); err != nil {
		return nil, fmt.Errorf("allocate graphics context id: %w", err)
	}
	if err := xproto.CreateGCChecked(conn, w.gc, xproto.Drawable(w.id), 0, nil).Check(); err != nil {
		return nil, fmt.Errorf("create graphics context: %w", err)
	}
	for i, rgb := range [4]uint32{colourTopLeft, colourTopRight, colourBottomLeft, colourBottomRight} {
		if w.pixels[i], err = w.alloc(conn, rgb); err != nil {
			return nil, err
		}
	}
	if w.black, err = w.alloc(conn, 0x000000); err != nil {
		return nil, err
	}
	if w.white, err = w.alloc(conn, 0xffffff); err != nil {
		return nil, err
	}
	if err := xproto.MapWindowChecked(conn, w.id).Check(); err != nil {
		return nil, fmt.Errorf("map window: %w", err)
	}
	return w, nil
}

// alloc turns 0xRRGGBB into a pixel value of the default colormap; asking
// the server instead of assuming a 24-bit TrueColor layout keeps the colours
// exact wherever the server can represent them.
func (w *window) alloc(conn *xgb.Conn, rgb uint32) (uint32, error) {
	r, g, b := uint16(rgb>>16&0xff), uint16(rgb>>8&0xff), uint16(rgb&0xff)
	reply, err := xproto.AllocColor(conn, w.cmap, r*0x101, g*0x101, b*0x101).Reply()
	if err != nil {
		return 0, fmt.Errorf("allocate colour #%06x: %w", rgb, err)
	}
	return reply.Pixel, nil
}

func (w *window) fill(conn *xgb.Conn, pixel uint32, rects ...xproto.Rectangle) {
	xproto.ChangeGC(conn, w.gc, xproto.GcForeground, []uint32{pixel})
	xproto.PolyFillRectangle(conn, xproto.Drawable(w.id), w.gc, rects)
}

// flush waits for a round trip, so every request sent before it has been
// executed by the server when it returns.
func flush(conn *xgb.Conn) error {
	if _, err := xproto.GetInputFocus(conn).Reply(); err != nil {
		return fmt.Errorf("sync with X server: %w", err)
	}
	return nil
}

func (w *window) paintPattern(conn *xgb.Conn) error {
	hw, hh := w.width/2, w.height/2
	w.fill(conn, w.pixels[0], xproto.Rectangle{X: 0, Y: 0, Width: hw, Height: hh})
	w.fill(conn, w.pixels[1], xproto.Rectangle{X: int16(hw), Y: 0, Width: w.width - hw, Height: hh})
	w.fill(conn, w.pixels[2], xproto.Rectangle{X: 0, Y: int16(hh), Width: hw, Height: w.height - hh})
	w.fill(conn, w.pixels[3], xproto.Rectangle{X: int16(hw), Y: int16(hh), Width: w.width - hw, Height: w.height - hh})
	return flush(conn)
}

func (w *window) paintGrey(conn *xgb.Conn, level byte) error {
	grey, err := w.grey(conn, level)
	if err != nil {
		return err
	}
	w.fill(conn, grey, xproto.Rectangle{Width: w.width, Height: w.height})
	// Waiting for the server each frame keeps requests from piling up when
	// the server is slower than -interval.
	return flush(conn)
}

// stampf prints one line ending in " @" and the wall-clock time in Unix
// microseconds, in one Write.
func stampf(out io.Writer, format string, args ...any) error {
	line := fmt.Sprintf(format, args...)
	if _, err := fmt.Fprintf(out, "%s @%d\n", line, time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("print: %w", err)
	}
	return nil
}
