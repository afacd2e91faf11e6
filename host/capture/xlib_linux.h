// The C half of the X11 capture path: a persistent XShm capture (tcap) and
// a second connection that waits for changes (twatch). Go calls the
// functions declared here; xlib_linux.c defines them.

#ifndef TETHER_CAPTURE_XLIB_H
#define TETHER_CAPTURE_XLIB_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XShm.h>
#include <X11/extensions/Xfixes.h>
#include <X11/extensions/Xdamage.h>
#include <X11/extensions/XInput2.h>

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
	TCAP_ENODAMAGE, // the server has no DAMAGE or no XFixes 2
	TCAP_EPIPE,    // creating the wake pipe failed, see sys_errno
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
	// The cursor the last tcap_draw_cursor saw (when cur_known): the
	// pointer position, the cursor image's rectangle in root window
	// coordinates and its serial, which XFixes CursorNotify events carry.
	int cur_known;
	int cur_x, cur_y;
	int cur_bx, cur_by, cur_bw, cur_bh;
	unsigned long cur_serial;
} tcap;

// twatch is the second connection that learns of changes (see
// changeWatch in watch_linux.go). It starts with a tcap so that the error
// trapping above works on it unchanged; only dpy, root and the error fields
// of that tcap are used.
typedef struct {
	tcap x;
	Damage damage;
	XserverRegion parts;    // receives the damage each check takes
	int damage_event;       // event base of DAMAGE
	int fixes_event;        // event base of XFixes
	unsigned long cursor_serial; // serial of the last CursorNotify, 0 before one
	int xi_opcode;          // XInput's opcode when raw motion is selected, else 0
	int wake[2];            // a byte written to wake[1] ends twatch_wait
} twatch;

// Events twatch_wait reports, as bits.
enum {
	TWATCH_DAMAGE = 1,
	TWATCH_CURSOR = 2,
	TWATCH_WOKEN = 4,
	TWATCH_MOTION = 8,
};

void tcap_init(void);
int tcap_open(tcap *c, const char *name);
int tcap_alloc(tcap *c, int w, int h);
int tcap_poll_resize(tcap *c);
int tcap_grab(tcap *c, int x, int y);
int tcap_grab_area(tcap *c, int x, int y, int w, int h, int ix, int iy);
int tcap_draw_cursor(tcap *c, int ox, int oy);
void tcap_close(tcap *c);

int twatch_open(twatch *w, const char *name);
int twatch_wait(twatch *w, int timeout_ms, int *events);
int twatch_damaged(twatch *w, int x, int y, int width, int height, int *hit,
		int *bx, int *by, int *bw, int *bh);
int twatch_pointer(twatch *w, int *x, int *y, int *same_screen);
void twatch_wake(twatch *w);
void twatch_close(twatch *w);

#endif
