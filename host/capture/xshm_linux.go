//go:build linux && cgo

package capture

// The C half lives in xlib_linux.c.

/*
#cgo pkg-config: x11 xext xfixes xdamage xi
#include <stdlib.h>
#include "xlib_linux.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// errXShmUnavailable is why Open falls back to the portable path.
var errXShmUnavailable = errors.New("X server offers no MIT-SHM")

// Open opens the fast X11 path (a persistent XShm GetImage with the cursor
// drawn in from XFixes) when DISPLAY names a reachable X server that can
// share memory with this process; otherwise, for example over a remote X
// connection or on a screen that is not 32 bits per pixel, it opens the
// portable path. display is the index of the monitor in Displays; the
// capturer grabs only that monitor's rectangle of the screen.
func Open(display int) (Capturer, error) {
	x, err := openXShm(display)
	if err == nil {
		return x, nil
	}
	if errors.Is(err, ErrNoDisplay) || errors.Is(err, ErrNoMonitor) || errors.Is(err, ErrWayland) {
		// The portable path would fail the same way.
		return nil, err
	}
	p, perr := OpenPortable(display)
	if perr != nil {
		return nil, errors.Join(err, perr)
	}
	return p, nil
}

var initXlib sync.Once

// pointerPoll is how often at most WaitChange asks where the pointer is.
// The cursor is drawn into the picture, so a moved pointer is a change.
// Core motion events go to the window under the pointer and stop there;
// XInput 2.1 raw motion events reach the root window, and with them
// WaitChange asks only when a device moved the pointer. Without them it
// asks every pointerPoll: a QueryPointer round trip costs tens of
// microseconds, and every 8 ms sees a move within half a frame at 60 Hz.
const pointerPoll = 8 * time.Millisecond

// pointerWarpPoll is how often WaitChange asks where the pointer is when raw
// motion events tell it of moves: a program that warps the pointer makes
// none. A still desktop then wakes the host four times a second for the
// pointer, not 125.
const pointerWarpPoll = 250 * time.Millisecond

// xshm keeps one X connection and one shared memory segment for its life,
// and a second connection (watch) to learn of changes.
type xshm struct {
	mu      sync.Mutex
	c       *C.tcap // nil once closed
	display int
	name    string
	rect    image.Rectangle // monitor in root window coordinates
	frame   Frame
	closing chan struct{} // closed by Close, to wake WaitChange

	// watch is nil when the server lacks DAMAGE; WaitChange then polls
	// and compares tile hashes, as the portable path does.
	watch *changeWatch
	// pending says WaitChange saw a change that no Capture has picked up
	// yet. It starts true: nothing has been captured.
	pending bool
	// dirty is the bounding box of the damage WaitChange took since the
	// last Capture (root window coordinates); dirtyAll says the whole
	// monitor counts as changed (nothing captured yet, or a grab failed).
	dirty    image.Rectangle
	dirtyAll bool
	cursor   cursorState // the cursor the last Capture drew

	// For polling without DAMAGE:
	seen     tileHashes // of the picture the last Capture returned
	probe    tileHashes
	nextPoll time.Time
	resized  bool // a poll consumed a resize event that Capture must act on
}

// cursorState is where the last Capture drew the cursor.
type cursorState struct {
	known  bool
	pos    image.Point     // the pointer
	box    image.Rectangle // the cursor image, root window coordinates
	serial uint32
}

func openXShm(display int) (_ *xshm, err error) {
	name, rect, err := probeX(display)
	if err != nil {
		return nil, err
	}
	initXlib.Do(func() { C.tcap_init() })
	x := &xshm{display: display, name: name, c: (*C.tcap)(C.calloc(1, C.sizeof_tcap)),
		closing: make(chan struct{}), pending: true, dirtyAll: true}
	if x.c == nil {
		return nil, errors.New("allocate X capture state: out of memory")
	}
	defer func() {
		if err != nil {
			x.Close()
		}
	}()
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	err = reopenX(func() error {
		if st := C.tcap_open(x.c, cname); st != C.TCAP_OK {
			return x.statusError(fmt.Sprintf("open X display %q", name), st)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := x.resize(rect); err != nil {
		return nil, err
	}
	err = reopenX(func() (err error) {
		x.watch, err = newChangeWatch(name)
		return err
	})
	if errors.Is(err, errNoDamage) {
		x.watch = nil // poll instead
	} else if err != nil {
		return nil, err
	}
	return x, nil
}

// resize points the capturer at rect, reallocating the segment when the
// size changes.
func (x *xshm) resize(rect image.Rectangle) error {
	if x.frame.Pix != nil && rect.Size() == x.rect.Size() {
		x.rect = rect
		return nil
	}
	x.frame = Frame{}
	if st := C.tcap_alloc(x.c, C.int(rect.Dx()), C.int(rect.Dy())); st != C.TCAP_OK {
		return x.statusError(fmt.Sprintf("allocate %dx%d shared memory image", rect.Dx(), rect.Dy()), st)
	}
	img := x.c.img
	x.rect = rect
	x.frame = Frame{
		Width:  int(img.width),
		Height: int(img.height),
		Stride: int(img.bytes_per_line),
		// The segment is C memory that lives until the next resize or
		// Close; Frame documents that lifetime.
		Pix: unsafe.Slice((*byte)(unsafe.Pointer(img.data)), int(img.bytes_per_line)*int(img.height)),
	}
	return nil
}

func (x *xshm) statusError(op string, st C.int) error { return statusError(x.c, x.name, op, st) }

// statusError turns a TCAP_ status of an operation on c, connected to X
// display name, into an error.
func statusError(c *C.tcap, name, op string, st C.int) error {
	switch st {
	case C.TCAP_ENOCONN:
		return fmt.Errorf("%s: XOpenDisplay failed: %w", op, ErrNoDisplay)
	case C.TCAP_ENOSHM:
		return fmt.Errorf("%s: %w", op, errXShmUnavailable)
	case C.TCAP_ENODAMAGE:
		return fmt.Errorf("%s: %w", op, errNoDamage)
	case C.TCAP_EFORMAT:
		img := c.img
		return fmt.Errorf("%s: screen format is %d bits per pixel, byte order %d, masks %#x/%#x/%#x; want 32-bit little-endian xRGB",
			op, img.bits_per_pixel, img.byte_order, img.red_mask, img.green_mask, img.blue_mask)
	case C.TCAP_EIMAGE:
		return fmt.Errorf("%s: XShmCreateImage failed", op)
	case C.TCAP_ESHMGET:
		return fmt.Errorf("%s: shmget: %w", op, syscall.Errno(c.sys_errno))
	case C.TCAP_ESHMAT:
		return fmt.Errorf("%s: shmat: %w", op, syscall.Errno(c.sys_errno))
	case C.TCAP_EPIPE:
		return fmt.Errorf("%s: pipe: %w", op, syscall.Errno(c.sys_errno))
	case C.TCAP_EXERR:
		var buf [160]C.char
		C.XGetErrorText(c.dpy, c.xerr, &buf[0], C.int(len(buf)))
		return fmt.Errorf("%s: X error %q (request %d.%d)", op, C.GoString(&buf[0]), c.xreq, c.xminor)
	case C.TCAP_EIO:
		return fmt.Errorf("%s: connection to X display %q lost: %w", op, name, ErrNoDisplay)
	case C.TCAP_EGET:
		return fmt.Errorf("%s: XShmGetImage failed", op)
	}
	return fmt.Errorf("%s: unknown status %d", op, st)
}

func (x *xshm) Capture() (*Frame, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.c == nil {
		return nil, fmt.Errorf("capture monitor %d: %w", x.display, ErrClosed)
	}
	// Cleared before the grab: whatever changes from here on is either in
	// this picture or reported by the next WaitChange.
	x.pending = false
	dirty, all := x.dirty, x.dirtyAll || x.watch == nil
	x.dirty, x.dirtyAll = image.Rectangle{}, false
	before, rect := x.cursor, x.rect
	// Only what changed is grabbed: the damage so far and where the cursor
	// was (the rest of the segment still holds the screen); everything
	// when that is unknown. The damage is taken here too, so that a
	// Capture without a WaitChange before it shows the screen as it is.
	area, changed := rect, rect
	if !all {
		if damage, ok := x.watch.damageNow(rect); ok {
			changed = dirty.Union(damage)
			area = changed
			if before.known {
				area = area.Union(before.box)
			}
		}
	}
	if err := x.grabWithCursor(area); err != nil {
		// The caller got no picture, and the damage taken is gone: the
		// next Capture grabs everything.
		x.pending, x.dirtyAll = true, true
		return nil, err
	}
	if x.watch == nil {
		// No damage: what changed is what the tile hashes tell.
		x.probe.compute(x.frame.Pix, x.frame.Stride, x.frame.Width, x.frame.Height)
		changed = x.seen.diff(&x.probe).Add(x.rect.Min)
		x.seen.copyFrom(&x.probe)
	}
	// What changed: the damage, and the cursor's old and new place if it
	// moved or changed its image (drawn again where it was, it changes
	// nothing).
	if x.rect != rect {
		changed = x.rect // resized: grabbed whole
	}
	if x.cursor != before {
		for _, c := range []cursorState{before, x.cursor} {
			if c.known {
				changed = changed.Union(c.box)
			}
		}
	}
	x.frame.Changed = changed.Intersect(x.rect).Sub(x.rect.Min)
	return &x.frame, nil
}

// grabWithCursor follows a resize, grabs area (root window coordinates;
// the whole monitor after a resize) and draws the cursor in. Callers hold
// mu.
func (x *xshm) grabWithCursor(area image.Rectangle) error {
	resized := C.tcap_poll_resize(x.c) != 0 || x.resized
	x.resized = false
	if resized {
		// The screen was resized: the monitor may have moved or changed
		// size. This costs a connection, but only after a resize.
		rect, err := probeMonitor(x.name, x.display)
		if err != nil {
			return fmt.Errorf("capture after screen resize: %w", err)
		}
		if err := x.resize(rect); err != nil {
			return fmt.Errorf("capture after screen resize: %w", err)
		}
		area = x.rect
	}
	if err := x.grabArea(area.Intersect(x.rect)); err != nil {
		return err
	}
	C.tcap_draw_cursor(x.c, C.int(x.rect.Min.X), C.int(x.rect.Min.Y))
	c := x.c
	x.cursor = cursorState{known: c.cur_known != 0,
		pos:    image.Pt(int(c.cur_x), int(c.cur_y)),
		box:    image.Rect(int(c.cur_bx), int(c.cur_by), int(c.cur_bx+c.cur_bw), int(c.cur_by+c.cur_bh)),
		serial: uint32(c.cur_serial)}
	return nil
}

func (x *xshm) WaitChange(ctx context.Context, timeout time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	x.mu.Lock()
	if x.c == nil {
		x.mu.Unlock()
		return false, fmt.Errorf("wait for a change on monitor %d: %w", x.display, ErrClosed)
	}
	pending, w, rect, cur := x.pending, x.watch, x.rect, x.cursor
	x.mu.Unlock()
	if pending {
		return true, nil
	}
	if w == nil {
		return x.pollWait(ctx, timeout)
	}
	changed, damage, err := x.watchWait(ctx, timeout, w, rect, cur)
	if changed {
		x.mu.Lock()
		x.pending = true
		x.dirty = x.dirty.Union(damage)
		x.mu.Unlock()
	}
	return changed, err
}

// watchWait waits for the X server to report a change inside rect, or
// for the pointer to move the cursor drawn at cur. It returns the
// bounding box of the damage it took (empty when the cursor moved).
func (x *xshm) watchWait(ctx context.Context, timeout time.Duration, w *changeWatch, rect image.Rectangle, cur cursorState) (bool, image.Rectangle, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	closed := func() error {
		return fmt.Errorf("wait for a change on monitor %d: %w", x.display, ErrClosed)
	}
	if w.w == nil {
		return false, image.Rectangle{}, closed()
	}
	stop := context.AfterFunc(ctx, w.wake)
	defer stop()

	deadline := time.Now().Add(timeout)
	every := pointerPoll
	if w.rawMotion() {
		every = pointerWarpPoll
	}
	// With no time to wait, ask for the damage region: it is
	// authoritative whether or not its event has arrived.
	takeDamage := timeout <= 0
	for {
		select {
		case <-x.closing:
			return false, image.Rectangle{}, closed()
		default:
		}
		if err := ctx.Err(); err != nil {
			return false, image.Rectangle{}, err
		}
		// Damage first: a pending damage region must be taken whatever
		// else reports a change, or the server reports no more damage and
		// the screen goes unwatched.
		if takeDamage {
			box, err := w.damaged(rect)
			if err != nil || !box.Empty() {
				return !box.Empty(), box, x.watchError(err)
			}
		}
		now := time.Now()
		if cur.known && !now.Before(w.nextPointer) {
			p, ok, err := w.pointer()
			if err != nil {
				return false, image.Rectangle{}, x.watchError(err)
			}
			// The cursor moved if the pointer did, and it counts if the
			// cursor was or is now on the monitor.
			if ok && p != cur.pos && (cur.box.Overlaps(rect) || cur.box.Add(p.Sub(cur.pos)).Overlaps(rect)) {
				return true, image.Rectangle{}, nil
			}
			w.asked, w.nextPointer = now, now.Add(every)
		}
		// A new cursor image under the pointer: XFixes announced a serial
		// other than the one drawn.
		if s := w.cursorSerial(); cur.known && s != 0 && s != cur.serial && cur.box.Overlaps(rect) {
			return true, image.Rectangle{}, nil
		}
		if timeout <= 0 || !now.Before(deadline) {
			return false, image.Rectangle{}, nil
		}
		wait := deadline.Sub(now)
		if cur.known {
			wait = min(wait, w.nextPointer.Sub(now))
		}
		events, err := w.wait(wait)
		if err != nil {
			return false, image.Rectangle{}, x.watchError(err)
		}
		// A wake (ctx or Close) and a cursor notification are looked at
		// at the top of the loop.
		takeDamage = events&C.TWATCH_DAMAGE != 0
		if soon := w.asked.Add(pointerPoll); events&C.TWATCH_MOTION != 0 && soon.Before(w.nextPointer) {
			w.nextPointer = soon
		}
	}
}

// watchError describes an error of the watching connection, which may be
// due to Close.
func (x *xshm) watchError(err error) error {
	if err == nil {
		return nil
	}
	select {
	case <-x.closing:
		return fmt.Errorf("wait for a change on monitor %d: %w", x.display, ErrClosed)
	default:
		return fmt.Errorf("wait for a change on monitor %d: %w", x.display, err)
	}
}

// pollWait is WaitChange without DAMAGE: every pollInterval it grabs the
// monitor with the cursor into the segment (the Frame documents that
// WaitChange may overwrite it) and compares tile hashes with those of the
// last Capture.
func (x *xshm) pollWait(ctx context.Context, timeout time.Duration) (bool, error) {
	return pollUntil(ctx, timeout, x.closing, x.display, func(now bool) (bool, time.Time, error) {
		x.mu.Lock()
		defer x.mu.Unlock()
		return x.poll(now)
	})
}

// poll grabs and compares when a poll is due (or now is set) and says when
// the next one is. Callers hold mu.
func (x *xshm) poll(now bool) (changed bool, next time.Time, err error) {
	if x.c == nil {
		return false, time.Time{}, fmt.Errorf("wait for a change on monitor %d: %w", x.display, ErrClosed)
	}
	if x.pending {
		return true, time.Time{}, nil
	}
	if !now && time.Now().Before(x.nextPoll) {
		return false, x.nextPoll, nil
	}
	// A resize seen here is left for Capture, which must reallocate.
	if C.tcap_poll_resize(x.c) != 0 {
		x.resized, x.pending = true, true
		return true, time.Time{}, nil
	}
	err = x.grab()
	if err == nil {
		C.tcap_draw_cursor(x.c, C.int(x.rect.Min.X), C.int(x.rect.Min.Y))
	}
	x.nextPoll = time.Now().Add(pollInterval)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("poll for a change: %w", err)
	}
	x.probe.compute(x.frame.Pix, x.frame.Stride, x.frame.Width, x.frame.Height)
	if x.probe.equal(&x.seen) {
		return false, x.nextPoll, nil
	}
	x.pending = true
	return true, time.Time{}, nil
}

// grabArea grabs area (root window coordinates, inside the monitor) into
// its place in the segment; all of it when area is the monitor. Callers
// hold mu.
func (x *xshm) grabArea(area image.Rectangle) error {
	if area == x.rect {
		return x.grab()
	}
	if area.Empty() {
		return nil
	}
	if x.frame.Pix == nil {
		return fmt.Errorf("capture monitor %d: no shared memory image", x.display)
	}
	in := area.Sub(x.rect.Min)
	st := C.tcap_grab_area(x.c, C.int(area.Min.X), C.int(area.Min.Y), C.int(area.Dx()), C.int(area.Dy()), C.int(in.Min.X), C.int(in.Min.Y))
	if st != C.TCAP_OK {
		return x.statusError(fmt.Sprintf("capture %v of monitor %d", area, x.display), st)
	}
	return nil
}

// grab is the bare XShmGetImage into the segment. Callers hold mu.
func (x *xshm) grab() error {
	if x.frame.Pix == nil {
		// A failed reallocation left no segment.
		return fmt.Errorf("capture monitor %d: no shared memory image", x.display)
	}
	if st := C.tcap_grab(x.c, C.int(x.rect.Min.X), C.int(x.rect.Min.Y)); st != C.TCAP_OK {
		return x.statusError(fmt.Sprintf("capture monitor %d at %v", x.display, x.rect), st)
	}
	return nil
}

func (x *xshm) Size() (int, int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.frame.Width, x.frame.Height
}

func (x *xshm) Bounds() (int, int, int, int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.rect.Min.X, x.rect.Min.Y, x.rect.Dx(), x.rect.Dy()
}

func (x *xshm) Name() string { return NameXShm }

// Close detaches and frees the segment and closes the X connections. The
// last Frame is invalid afterwards.
func (x *xshm) Close() error {
	x.mu.Lock()
	if x.c == nil {
		x.mu.Unlock()
		return nil
	}
	close(x.closing)
	C.tcap_close(x.c)
	C.free(unsafe.Pointer(x.c))
	x.c = nil
	x.frame = Frame{}
	w := x.watch
	x.watch = nil
	x.mu.Unlock()
	// Outside mu: a WaitChange holds w's lock and takes mu when it
	// returns true.
	if w != nil {
		w.close()
	}
	return nil
}
