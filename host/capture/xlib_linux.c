//go:build linux && cgo

#define _GNU_SOURCE // pipe2
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "xlib_linux.h"

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

void tcap_init(void) {
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

int tcap_open(tcap *c, const char *name) {
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

int tcap_alloc(tcap *c, int w, int h) {
	tcap_free_image(c);
	if (c->io_dead) return TCAP_EIO;
	// XShmCreateImage makes no request, so nothing to trap.
	c->img = XShmCreateImage(c->dpy, c->visual, c->depth, ZPixmap, NULL, &c->shm, w, h);
	if (c->img == NULL) return TCAP_EIMAGE;
	if (c->img->bits_per_pixel != 32 || c->img->byte_order != LSBFirst ||
	    c->img->red_mask != 0xff0000 || c->img->green_mask != 0xff00 || c->img->blue_mask != 0xff)
		return TCAP_EFORMAT;
	// Twice the image: the second half receives partial grabs, which the
	// server writes as packed rows (tcap_grab_area).
	c->shm.shmid = shmget(IPC_PRIVATE, 2 * (size_t)c->img->bytes_per_line * c->img->height, IPC_CREAT | 0600);
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
int tcap_poll_resize(tcap *c) {
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

int tcap_grab(tcap *c, int x, int y) {
	if (c->io_dead) return TCAP_EIO;
	tcap_trap(c);
	Bool ok = XShmGetImage(c->dpy, c->root, c->img, x, y, AllPlanes);
	int st = tcap_untrap(c);
	if (st != TCAP_OK) return st;
	return ok ? TCAP_OK : TCAP_EGET;
}

// tcap_grab_area grabs the rectangle x,y,w,h of the root window into the
// image at ix,iy: the server writes it packed into the second half of the
// segment, then it is copied row by row into place.
int tcap_grab_area(tcap *c, int x, int y, int w, int h, int ix, int iy) {
	if (c->io_dead) return TCAP_EIO;
	XImage part = *c->img; // same segment (obdata), format and depth
	part.width = w;
	part.height = h;
	part.bytes_per_line = 4 * w;
	part.data = c->img->data + (size_t)c->img->bytes_per_line * c->img->height;
	tcap_trap(c);
	Bool ok = XShmGetImage(c->dpy, c->root, &part, x, y, AllPlanes);
	int st = tcap_untrap(c);
	if (st != TCAP_OK) return st;
	if (!ok) return TCAP_EGET;
	for (int j = 0; j < h; j++) {
		memcpy(c->img->data + (size_t)(iy + j) * c->img->bytes_per_line + 4 * (size_t)ix,
			part.data + (size_t)j * part.bytes_per_line, 4 * (size_t)w);
	}
	return TCAP_OK;
}

// tcap_draw_cursor blends the current cursor into the image, which starts
// at (ox, oy) on the root window. It returns 1 when some of the cursor fell
// inside the image.
int tcap_draw_cursor(tcap *c, int ox, int oy) {
	c->cur_known = 0;
	if (!c->has_fixes || c->io_dead) return 0;
	tcap_trap(c);
	XFixesCursorImage *ci = XFixesGetCursorImage(c->dpy);
	tcap_untrap(c);
	if (ci == NULL) return 0;
	c->cur_known = 1;
	c->cur_x = ci->x;
	c->cur_y = ci->y;
	c->cur_bx = ci->x - ci->xhot;
	c->cur_by = ci->y - ci->yhot;
	c->cur_bw = ci->width;
	c->cur_bh = ci->height;
	c->cur_serial = ci->cursor_serial;
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

void tcap_close(tcap *c) {
	tcap_free_image(c);
	if (c->dpy != NULL) {
		// XCloseDisplay skips the protocol when the connection is dead.
		tcap_trap(c);
		XCloseDisplay(c->dpy);
		tcap_untrap(c);
		c->dpy = NULL;
	}
}

// twatch_drain moves every event Xlib has read, or can read without
// blocking, out of the queue and reports what they were.
static int twatch_drain(twatch *w) {
	int events = 0;
	Display *dpy = w->x.dpy;
	// XPending flushes our requests and reads what the socket holds.
	while (!w->x.io_dead && XPending(dpy) > 0) {
		XEvent ev;
		XNextEvent(dpy, &ev);
		if (ev.type == w->damage_event + XDamageNotify) {
			events |= TWATCH_DAMAGE;
		} else if (ev.type == w->fixes_event + XFixesCursorNotify) {
			w->cursor_serial = ((XFixesCursorNotifyEvent *)&ev)->cursor_serial;
			events |= TWATCH_CURSOR;
		} else if (w->xi_opcode != 0 && ev.xcookie.type == GenericEvent &&
			   ev.xcookie.extension == w->xi_opcode && ev.xcookie.evtype == XI_RawMotion) {
			// What moved and where is not needed: the position is
			// asked for, when its turn comes. Xlib frees the
			// event's data at the next XNextEvent.
			events |= TWATCH_MOTION;
		}
	}
	return events;
}

// twatch_select_motion asks for XInput 2.1 raw motion events, which report
// every move of every pointing device (physical or XTest) on the root window,
// grabs or not; w->xi_opcode stays 0 when the server has no XInput 2.1, or
// no Generic Event Extension to send its events in (the server then accepts
// the selection and sends nothing). The pointer's position is then asked
// for when it moves rather than every few milliseconds. A program that warps
// the pointer makes no raw event; the caller still asks now and then.
static void twatch_select_motion(twatch *w) {
	Display *dpy = w->x.dpy;
	int opcode, ev_base, err_base, major = 2, minor = 1;
	if (!XQueryExtension(dpy, "Generic Event Extension", &opcode, &ev_base, &err_base)) return;
	if (!XQueryExtension(dpy, "XInputExtension", &opcode, &ev_base, &err_base)) return;
	tcap_trap(&w->x);
	Status ok = XIQueryVersion(dpy, &major, &minor);
	if (tcap_untrap(&w->x) != TCAP_OK || ok != Success || major < 2 || (major == 2 && minor < 1)) return;
	unsigned char bits[XIMaskLen(XI_RawMotion)] = {0};
	XISetMask(bits, XI_RawMotion);
	XIEventMask mask = {.deviceid = XIAllMasterDevices, .mask_len = sizeof bits, .mask = bits};
	tcap_trap(&w->x);
	XISelectEvents(dpy, w->x.root, &mask, 1);
	XSync(dpy, False);
	if (tcap_untrap(&w->x) == TCAP_OK) w->xi_opcode = opcode;
}

int twatch_open(twatch *w, const char *name) {
	w->x.shm.shmid = -1;
	w->wake[0] = w->wake[1] = -1;
	if (pipe2(w->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		w->x.sys_errno = errno;
		return TCAP_EPIPE;
	}
	w->x.dpy = XOpenDisplay(name);
	if (w->x.dpy == NULL) return TCAP_ENOCONN;
	Display *dpy = w->x.dpy;
	XSetIOErrorExitHandler(dpy, tcap_on_io_exit, &w->x);
	tcap_trap(&w->x);
	w->x.root = DefaultRootWindow(dpy);
	int err_base, major = 1, minor = 1;
	// Both extensions refuse requests before the version handshake, and
	// regions need XFixes 2.
	if (!XDamageQueryExtension(dpy, &w->damage_event, &err_base) ||
	    !XDamageQueryVersion(dpy, &major, &minor)) {
		int st = tcap_untrap(&w->x);
		return st != TCAP_OK ? st : TCAP_ENODAMAGE;
	}
	major = 5, minor = 0;
	if (!XFixesQueryExtension(dpy, &w->fixes_event, &err_base) ||
	    !XFixesQueryVersion(dpy, &major, &minor) || major < 2) {
		int st = tcap_untrap(&w->x);
		return st != TCAP_OK ? st : TCAP_ENODAMAGE;
	}
	// Non-empty: one event when the damage goes from empty to not, however
	// much is drawn until twatch_damaged empties it again.
	w->damage = XDamageCreate(dpy, w->x.root, XDamageReportNonEmpty);
	w->parts = XFixesCreateRegion(dpy, NULL, 0);
	XFixesSelectCursorInput(dpy, w->x.root, XFixesDisplayCursorNotifyMask);
	// The server reports the whole window damaged when the damage is
	// created; drop that, and its event, or the first wait after the first
	// capture would wake for nothing.
	XDamageSubtract(dpy, w->damage, None, None);
	XSync(dpy, False);
	twatch_drain(w);
	int st = tcap_untrap(&w->x);
	if (st == TCAP_OK) twatch_select_motion(w);
	return st;
}

// twatch_take reads the events Xlib holds or the socket has, without
// waiting, and sets *events to what they report.
static int twatch_take(twatch *w, int *events) {
	tcap_trap(&w->x);
	*events = twatch_drain(w);
	return tcap_untrap(&w->x);
}

// twatch_wait returns once an event arrived (or was already queued), a
// byte was written to the wake pipe, or timeout_ms passed, and sets
// *events to what happened. It may also return early with nothing (*events
// 0, as on a timeout): a signal (the Go runtime sends them) or data that
// held no event ended the poll. The caller then waits again for what is
// left of its time; polling again here for the whole timeout would stretch
// the wait with every signal.
int twatch_wait(twatch *w, int timeout_ms, int *events) {
	*events = 0;
	if (w->x.io_dead) return TCAP_EIO;
	int st = twatch_take(w, events);
	if (st != TCAP_OK || *events != 0) return st;
	struct pollfd fds[2] = {
		{.fd = ConnectionNumber(w->x.dpy), .events = POLLIN},
		{.fd = w->wake[0], .events = POLLIN},
	};
	if (poll(fds, 2, timeout_ms) <= 0) return TCAP_OK;
	if (fds[1].revents != 0) {
		char buf[64];
		while (read(w->wake[0], buf, sizeof buf) > 0) {
		}
		*events = TWATCH_WOKEN;
		return TCAP_OK;
	}
	// The X socket is readable (or hung up, which XPending turns into an
	// I/O error): let Xlib read it.
	return twatch_take(w, events);
}

// twatch_damaged takes the damage accumulated so far, emptying it, and sets
// *hit when some of it lies in the rectangle, and the box (bx, by, bw, bh)
// to the bounding box of what lies in it. Fetching the region is a round
// trip, so the server has emptied the damage when this returns.
int twatch_damaged(twatch *w, int x, int y, int width, int height, int *hit,
		int *bx, int *by, int *bw, int *bh) {
	*hit = 0;
	if (w->x.io_dead) return TCAP_EIO;
	tcap_trap(&w->x);
	XDamageSubtract(w->x.dpy, w->damage, None, w->parts);
	int n = 0;
	XRectangle *r = XFixesFetchRegion(w->x.dpy, w->parts, &n);
	int st = tcap_untrap(&w->x);
	if (r != NULL) {
		int x0 = x + width, y0 = y + height, x1 = x, y1 = y;
		for (int i = 0; i < n; i++) {
			int rx0 = r[i].x > x ? r[i].x : x;
			int ry0 = r[i].y > y ? r[i].y : y;
			int rx1 = r[i].x + r[i].width < x + width ? r[i].x + r[i].width : x + width;
			int ry1 = r[i].y + r[i].height < y + height ? r[i].y + r[i].height : y + height;
			if (rx0 >= rx1 || ry0 >= ry1) continue;
			*hit = 1;
			if (rx0 < x0) x0 = rx0;
			if (ry0 < y0) y0 = ry0;
			if (rx1 > x1) x1 = rx1;
			if (ry1 > y1) y1 = ry1;
		}
		if (*hit) {
			*bx = x0;
			*by = y0;
			*bw = x1 - x0;
			*bh = y1 - y0;
		}
		XFree(r);
	}
	return st;
}

int twatch_pointer(twatch *w, int *x, int *y, int *same_screen) {
	if (w->x.io_dead) return TCAP_EIO;
	Window root, child;
	int wx, wy;
	unsigned int mask;
	tcap_trap(&w->x);
	*same_screen = XQueryPointer(w->x.dpy, w->x.root, &root, &child, x, y, &wx, &wy, &mask);
	return tcap_untrap(&w->x);
}

// twatch_wake makes a twatch_wait in progress, or the next one, return. It
// touches no Xlib state, so any thread may call it at any time before
// twatch_close.
void twatch_wake(twatch *w) {
	if (w->wake[1] >= 0) {
		ssize_t n = write(w->wake[1], "w", 1);
		(void)n; // a full pipe already holds a wake
	}
}

void twatch_close(twatch *w) {
	// Closing the connection frees the damage and the region on the server.
	tcap_close(&w->x);
	for (int i = 0; i < 2; i++) {
		if (w->wake[i] >= 0) close(w->wake[i]);
		w->wake[i] = -1;
	}
}
