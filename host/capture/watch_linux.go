//go:build linux && cgo

package capture

/*
#include <stdlib.h>
#include "xlib_linux.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"sync"
	"time"
	"unsafe"
)

// errNoDamage is why the X11 path polls instead of waiting for the server.
var errNoDamage = errors.New("X server offers no DAMAGE (or no XFixes 2)")

// changeWatch learns from the X server when the screen changes: a DAMAGE
// object on the root window (report level non-empty: one event per wait
// however much is drawn), XFixes cursor-change notifications and XInput
// raw motion, on a second Xlib connection (twatch in xlib_linux.c).
//
// Why a second connection rather than the capturing Display: a wait blocks
// in poll() on the connection's socket. On a shared Display, Capture's
// XShmGetImage reads that socket too and can move the awaited event into
// Xlib's queue just after the wait looked at it, so the wait would sleep
// through the change; avoiding that means holding the Display's lock
// across the wait, which stalls Capture and Close for up to the timeout.
// What two connections lose is ordering, and the checks restore it: taking
// the damage ends with a round trip (XFixesFetchRegion), so when WaitChange
// returns the server has reset the damage, and the GetImage the caller
// sends next runs after that reset. Drawing after the reset makes a new
// event; drawing before it is in the picture. No change is lost.
//
// Why Xlib and not the pure-Go xgb the package uses elsewhere: xgb's
// extension Init writes process-wide maps that every xgb connection's
// reader goroutine reads without a lock, so a long-lived xgb connection
// receiving events can crash the process ("concurrent map read and map
// write") whenever another xgb connection is set up, as Displays and the
// portable path do.
type changeWatch struct {
	// mu is held by the WaitChange using the watch, for the whole wait;
	// close takes it after waking that WaitChange.
	mu sync.Mutex
	// wakeMu guards w for wake, which runs without mu.
	wakeMu sync.Mutex
	w      *C.twatch // nil once closed
	name   string
	// When WaitChange asked where the pointer is last, and when it asks
	// next: from one wait to the next, a still pointer is not asked for
	// at the start of each. Guarded by mu.
	asked, nextPointer time.Time
	queries            int // pointer queries so far, guarded by mu
}

// newChangeWatch connects to X display name and starts watching. The
// error wraps errNoDamage when the server lacks the extensions.
func newChangeWatch(name string) (*changeWatch, error) {
	cw := &changeWatch{name: name, w: (*C.twatch)(C.calloc(1, C.sizeof_twatch))}
	if cw.w == nil {
		return nil, errors.New("allocate X watch state: out of memory")
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	if st := C.twatch_open(cw.w, cname); st != C.TCAP_OK {
		err := statusError(&cw.w.x, name, fmt.Sprintf("watch X display %q for changes", name), st)
		cw.close()
		return nil, err
	}
	return cw, nil
}

func (cw *changeWatch) status(op string, st C.int) error {
	if st == C.TCAP_OK {
		return nil
	}
	return statusError(&cw.w.x, cw.name, op, st)
}

// wait blocks until the server sends an event, wake is called or d passes,
// and returns the TWATCH_ bits of what happened; it may return early with
// none (a signal), and the caller then waits for what is left of d.
// Callers hold mu.
func (cw *changeWatch) wait(d time.Duration) (int, error) {
	ms := (d + time.Millisecond - 1) / time.Millisecond // poll(2) takes ms; never wake early
	var events C.int
	st := C.twatch_wait(cw.w, C.int(max(ms, 0)), &events)
	return int(events), cw.status("wait for X events", st)
}

// damaged takes the damage so far, emptying it, and returns the bounding
// box of what lies in rect (empty when nothing does). Callers hold mu.
func (cw *changeWatch) damaged(rect image.Rectangle) (image.Rectangle, error) {
	var hit, x, y, w, h C.int
	st := C.twatch_damaged(cw.w, C.int(rect.Min.X), C.int(rect.Min.Y), C.int(rect.Dx()), C.int(rect.Dy()), &hit, &x, &y, &w, &h)
	var box image.Rectangle
	if hit != 0 {
		box = image.Rect(int(x), int(y), int(x+w), int(y+h))
	}
	return box, cw.status("take damaged region", st)
}

// damageNow is damaged for Capture, which may not wait for a WaitChange
// holding the watch: ok is false when one is, or the watch is closed.
func (cw *changeWatch) damageNow(rect image.Rectangle) (box image.Rectangle, ok bool) {
	if !cw.mu.TryLock() {
		return image.Rectangle{}, false
	}
	defer cw.mu.Unlock()
	if cw.w == nil {
		return image.Rectangle{}, false
	}
	box, err := cw.damaged(rect)
	return box, err == nil
}

// pointer returns the pointer position on the root window; ok is false
// when the pointer is on another screen. Callers hold mu.
func (cw *changeWatch) pointer() (p image.Point, ok bool, err error) {
	cw.queries++
	var x, y, same C.int
	if err := cw.status("query pointer", C.twatch_pointer(cw.w, &x, &y, &same)); err != nil {
		return image.Point{}, false, err
	}
	return image.Pt(int(x), int(y)), same != 0, nil
}

// rawMotion says whether the server reports pointer moves (XInput 2.1
// raw motion events), so that the pointer need not be polled.
func (cw *changeWatch) rawMotion() bool { return cw.w.xi_opcode != 0 }

// cursorSerial is the serial of the cursor image XFixes announced last, 0
// before any. Callers hold mu.
func (cw *changeWatch) cursorSerial() uint32 { return uint32(cw.w.cursor_serial) }

// wake makes a wait in progress, or the next one, return. Any goroutine
// may call it at any time.
func (cw *changeWatch) wake() {
	cw.wakeMu.Lock()
	defer cw.wakeMu.Unlock()
	if cw.w != nil {
		C.twatch_wake(cw.w)
	}
}

// close wakes a WaitChange in the watch, waits for it to leave, and closes
// the connection.
func (cw *changeWatch) close() {
	cw.wake()
	cw.mu.Lock()
	defer cw.mu.Unlock()
	cw.wakeMu.Lock()
	w := cw.w
	cw.w = nil
	cw.wakeMu.Unlock()
	if w != nil {
		C.twatch_close(w)
		C.free(unsafe.Pointer(w))
	}
}
