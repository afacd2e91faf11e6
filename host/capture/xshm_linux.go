//go:build linux && cgo

package capture

/*
#cgo pkg-config: x11 xext xfixes
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XShm.h>
#include <X11/extensions/Xfixes.h>

enum {
	TCAP_OK = 0,
	TCAP_ENOCONN,  // XOpenDisplay failed
	TCAP_ENOSHM,   // the server has no MIT-SHM
	TCAP_EFORMAT,  // the screen is not 32 bits per pixel, little-endian xRGB
	TCAP_EIMAGE,   // XShmCreateImage failed
	TCAP_ESHMGET,  // shmget failed, see sys_errno
	TCAP_ESHMAT,   // shmat failed, see sys_errno
	TCAP_EXERR,    // X protocol error, see xerr, xreq, xminor
	TCAP_EIO,      // the connection to the X server is gone
	TCAP_EGET,     // XShmGetImage failed without an X error
};

typedef struct {
	Display *dpy;
	Window root;
	Visual *visual;
	int depth;
	int has_fixes;
	int root_w, root_h;
	XImage *img;
	XShmSegmentInfo shm;
	int shm_attached;
	int io_dead;
	int xerr, xreq, xminor; // first X error of the current operation
	int sys_errno;
} tcap;

// Xlib reports protocol errors through one process-wide handler whose
// default prints and exits. Ours records errors for the Display that the
// current thread is working on and passes the rest to the previous handler.
// Errors are delivered synchronously inside the Xlib call on the thread
// that made it, and a cgo call stays on one thread, so a thread-local
// pointer set for the duration of each C function is enough.
static __thread tcap *tcap_trapping;
static XErrorHandler tcap_prev_handler;
static XIOErrorHandler tcap_prev_io_handler;

static int tcap_on_error(Display *dpy, XErrorEvent *ev) {
	tcap *c = tcap_trapping;
	if (c != NULL && c->dpy == dpy) {
		if (c->xerr == 0) {
			c->xerr = ev->error_code;
			c->xreq = ev->request_code;
			c->xminor = ev->minor_code;
		}
		return 0;
	}
	return tcap_prev_handler != NULL ? tcap_prev_handler(dpy, ev) : 0;
}

// Losing the X server (logout, Xvfb killed) makes Xlib call the global I/O
// error handler and then the Display's exit handler; both default to
// exit(). For our Displays both just mark the Display dead, and Xlib then
// fails every further call on it instead of ending the process.
static int tcap_on_io_error(Display *dpy) {
	tcap *c = tcap_trapping;
	if (c != NULL && c->dpy == dpy) {
		c->io_dead = 1;
		return 0;
	}
	return tcap_prev_io_handler(dpy);
}

static void tcap_on_io_exit(Display *dpy, void *data) {
	((tcap *)data)->io_dead = 1;
	// Before calling this handler Xlib takes the Display's user lock (as
	// XLockDisplay does) on the failing thread and never releases it, so
	// the XCloseDisplay that must follow would wait forever when it runs on
	// another thread, as cgo calls may. Release it; an unlock with no lock
	// held does nothing.
	XUnlockDisplay(dpy);
}

static void tcap_init(void) {
	XInitThreads();
	tcap_prev_handler = XSetErrorHandler(tcap_on_error);
	tcap_prev_io_handler = XSetIOErrorHandler(tcap_on_io_error);
}

static void tcap_trap(tcap *c) {
	tcap_trapping = c;
	c->xerr = 0;
}

static int tcap_untrap(tcap *c) {
	tcap_trapping = NULL;
	if (c->io_dead) return TCAP_EIO;
	return c->xerr != 0 ? TCAP_EXERR : TCAP_OK;
}

static int tcap_open(tcap *c, const char *name) {
	c->shm.shmid = -1;
	c->dpy = XOpenDisplay(name);
	if (c->dpy == NULL) return TCAP_ENOCONN;
	XSetIOErrorExitHandler(c->dpy, tcap_on_io_exit, c);
	tcap_trap(c);
	if (!XShmQueryExtension(c->dpy)) {
		int st = tcap_untrap(c);
		return st != TCAP_OK ? st : TCAP_ENOSHM;
	}
	int scr = DefaultScreen(c->dpy);
	c->root = RootWindow(c->dpy, scr);
	c->visual = DefaultVisual(c->dpy, scr);
	c->depth = DefaultDepth(c->dpy, scr);
	int ev_base, err_base, major = 5, minor = 0;
	// XFixes requests are only valid after the version handshake.
	c->has_fixes = XFixesQueryExtension(c->dpy, &ev_base, &err_base) &&
		XFixesQueryVersion(c->dpy, &major, &minor) && major >= 1;
	// ConfigureNotify on the root tells us when the screen is resized.
	XSelectInput(c->dpy, c->root, StructureNotifyMask);
	XWindowAttributes wa;
	if (XGetWindowAttributes(c->dpy, c->root, &wa)) {
		c->root_w = wa.width;
		c->root_h = wa.height;
	}
	XSync(c->dpy, False);
	return tcap_untrap(c);
}

static void tcap_free_image(tcap *c) {
	if (c->shm_attached && !c->io_dead) {
		tcap_trap(c);
		XShmDetach(c->dpy, &c->shm);
		XSync(c->dpy, False);
		tcap_untrap(c);
	}
	c->shm_attached = 0;
	if (c->img != NULL) {
		// For shared memory images this frees the XImage, not the data.
		XDestroyImage(c->img);
		c->img = NULL;
	}
	if (c->shm.shmaddr != NULL) {
		shmdt(c->shm.shmaddr);
		c->shm.shmaddr = NULL;
	}
	if (c->shm.shmid >= 0) {
		shmctl(c->shm.shmid, IPC_RMID, NULL);
		c->shm.shmid = -1;
	}
}

static int tcap_alloc(tcap *c, int w, int h) {
	tcap_free_image(c);
	if (c->io_dead) return TCAP_EIO;
	// XShmCreateImage makes no request, so nothing to trap.
	c->img = XShmCreateImage(c->dpy, c->visual, c->depth, ZPixmap, NULL, &c->shm, w, h);
	if (c->img == NULL) return TCAP_EIMAGE;
	if (c->img->bits_per_pixel != 32 || c->img->byte_order != LSBFirst ||
	    c->img->red_mask != 0xff0000 || c->img->green_mask != 0xff00 || c->img->blue_mask != 0xff)
		return TCAP_EFORMAT;
	c->shm.shmid = shmget(IPC_PRIVATE, (size_t)c->img->bytes_per_line * c->img->height, IPC_CREAT | 0600);
	if (c->shm.shmid < 0) {
		c->sys_errno = errno;
		return TCAP_ESHMGET;
	}
	void *addr = shmat(c->shm.shmid, NULL, 0);
	if (addr == (void *)-1) {
		c->sys_errno = errno;
		return TCAP_ESHMAT;
	}
	c->shm.shmaddr = c->img->data = addr;
	c->shm.readOnly = False;
	tcap_trap(c);
	XShmAttach(c->dpy, &c->shm);
	XSync(c->dpy, False);
	int st = tcap_untrap(c);
	// Once both sides are attached, marking the segment removed makes the
	// kernel free it when the last one detaches, even if we crash.
	shmctl(c->shm.shmid, IPC_RMID, NULL);
	c->shm.shmid = -1;
	if (st != TCAP_OK) return st;
	c->shm_attached = 1;
	return TCAP_OK;
}

// tcap_poll_resize drains pending events without blocking and reports the
// root window's latest size when it changed.
static int tcap_poll_resize(tcap *c) {
	if (c->io_dead) return 0;
	int changed = 0;
	tcap_trap(c);
	while (XPending(c->dpy) > 0) {
		XEvent ev;
		XNextEvent(c->dpy, &ev);
		if (ev.type == ConfigureNotify && ev.xconfigure.window == c->root &&
		    (ev.xconfigure.width != c->root_w || ev.xconfigure.height != c->root_h)) {
			c->root_w = ev.xconfigure.width;
			c->root_h = ev.xconfigure.height;
			changed = 1;
		}
	}
	tcap_untrap(c);
	return changed;
}

static int tcap_grab(tcap *c, int x, int y) {
	if (c->io_dead) return TCAP_EIO;
	tcap_trap(c);
	Bool ok = XShmGetImage(c->dpy, c->root, c->img, x, y, AllPlanes);
	int st = tcap_untrap(c);
	if (st != TCAP_OK) return st;
	return ok ? TCAP_OK : TCAP_EGET;
}

// tcap_draw_cursor blends the current cursor into the image, which starts
// at (ox, oy) on the root window. It returns 1 when some of the cursor fell
// inside the image.
static int tcap_draw_cursor(tcap *c, int ox, int oy) {
	if (!c->has_fixes || c->io_dead) return 0;
	tcap_trap(c);
	XFixesCursorImage *ci = XFixesGetCursorImage(c->dpy);
	tcap_untrap(c);
	if (ci == NULL) return 0;
	int drawn = 0;
	int x0 = ci->x - ci->xhot - ox, y0 = ci->y - ci->yhot - oy;
	for (int j = 0; j < ci->height; j++) {
		int y = y0 + j;
		if (y < 0 || y >= c->img->height) continue;
		uint8_t *row = (uint8_t *)c->img->data + (size_t)y * c->img->bytes_per_line;
		// Pixels are unsigned long (64-bit on LP64), premultiplied ARGB in
		// the low 32 bits.
		const unsigned long *src = ci->pixels + (size_t)j * ci->width;
		for (int i = 0; i < ci->width; i++) {
			int x = x0 + i;
			if (x < 0 || x >= c->img->width) continue;
			uint32_t p = (uint32_t)src[i];
			uint32_t a = p >> 24;
			if (a == 0) continue;
			uint8_t *d = row + 4 * x;
			uint32_t inv = 255 - a;
			d[0] = (uint8_t)((p & 0xff) + (d[0] * inv + 127) / 255);
			d[1] = (uint8_t)((p >> 8 & 0xff) + (d[1] * inv + 127) / 255);
			d[2] = (uint8_t)((p >> 16 & 0xff) + (d[2] * inv + 127) / 255);
			drawn = 1;
		}
	}
	XFree(ci);
	return drawn;
}

static void tcap_close(tcap *c) {
	tcap_free_image(c);
	if (c->dpy != NULL) {
		// XCloseDisplay skips the protocol when the connection is dead.
		tcap_trap(c);
		XCloseDisplay(c->dpy);
		tcap_untrap(c);
		c->dpy = NULL;
	}
}
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"sync"
	"syscall"
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
	if errors.Is(err, ErrNoDisplay) || errors.Is(err, ErrNoMonitor) {
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

// xshm keeps one X connection and one shared memory segment for its life.
type xshm struct {
	mu      sync.Mutex
	c       *C.tcap // nil once closed
	display int
	name    string
	rect    image.Rectangle // monitor in root window coordinates
	frame   Frame
}

func openXShm(display int) (_ *xshm, err error) {
	name, rect, err := probeX(display)
	if err != nil {
		return nil, err
	}
	initXlib.Do(func() { C.tcap_init() })
	x := &xshm{display: display, name: name, c: (*C.tcap)(C.calloc(1, C.sizeof_tcap))}
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
	if st := C.tcap_open(x.c, cname); st != C.TCAP_OK {
		return nil, x.statusError(fmt.Sprintf("open X display %q", name), st)
	}
	if err := x.resize(rect); err != nil {
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

func (x *xshm) statusError(op string, st C.int) error {
	switch st {
	case C.TCAP_ENOCONN:
		return fmt.Errorf("%s: XOpenDisplay failed: %w", op, ErrNoDisplay)
	case C.TCAP_ENOSHM:
		return fmt.Errorf("%s: %w", op, errXShmUnavailable)
	case C.TCAP_EFORMAT:
		img := x.c.img
		return fmt.Errorf("%s: screen format is %d bits per pixel, byte order %d, masks %#x/%#x/%#x; want 32-bit little-endian xRGB",
			op, img.bits_per_pixel, img.byte_order, img.red_mask, img.green_mask, img.blue_mask)
	case C.TCAP_EIMAGE:
		return fmt.Errorf("%s: XShmCreateImage failed", op)
	case C.TCAP_ESHMGET:
		return fmt.Errorf("%s: shmget: %w", op, syscall.Errno(x.c.sys_errno))
	case C.TCAP_ESHMAT:
		return fmt.Errorf("%s: shmat: %w", op, syscall.Errno(x.c.sys_errno))
	case C.TCAP_EXERR:
		var buf [160]C.char
		C.XGetErrorText(x.c.dpy, x.c.xerr, &buf[0], C.int(len(buf)))
		return fmt.Errorf("%s: X error %q (request %d.%d)", op, C.GoString(&buf[0]), x.c.xreq, x.c.xminor)
	case C.TCAP_EIO:
		return fmt.Errorf("%s: connection to X display %q lost: %w", op, x.name, ErrNoDisplay)
	case C.TCAP_EGET:
		return fmt.Errorf("%s: XShmGetImage failed", op)
	}
	return fmt.Errorf("%s: unknown status %d", op, st)
}

func (x *xshm) Capture() (*Frame, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.c == nil {
		return nil, fmt.Errorf("capture monitor %d: capturer is closed", x.display)
	}
	if C.tcap_poll_resize(x.c) != 0 {
		// The screen was resized: the monitor may have moved or changed
		// size. This costs a connection, but only after a resize.
		rect, err := probeMonitor(x.name, x.display)
		if err != nil {
			return nil, fmt.Errorf("capture after screen resize: %w", err)
		}
		if err := x.resize(rect); err != nil {
			return nil, fmt.Errorf("capture after screen resize: %w", err)
		}
	}
	if err := x.grab(); err != nil {
		return nil, err
	}
	C.tcap_draw_cursor(x.c, C.int(x.rect.Min.X), C.int(x.rect.Min.Y))
	return &x.frame, nil
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

// Close detaches and frees the segment and closes the X connection. The
// last Frame is invalid afterwards.
func (x *xshm) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.c == nil {
		return nil
	}
	C.tcap_close(x.c)
	C.free(unsafe.Pointer(x.c))
	x.c = nil
	x.frame = Frame{}
	return nil
}
