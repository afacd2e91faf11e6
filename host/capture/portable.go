package capture

import (
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"sync"
	"time"

	"github.com/kbinani/screenshot"
)

// pollInterval is how long the portable path rests between the end of one
// poll's grab and the start of the next, so that polling keeps at most
// about half a core busy however slow a grab is (16-34 ms at 1920x1080 on
// X11). A change is seen within one rest plus two grabs: about 50 ms on
// average at 1920x1080 (BenchmarkDamageLatency/screenshot).
const pollInterval = 16 * time.Millisecond

// xgbMu serialises this package's X connections through the pure-Go xgb
// client, its own and kbinani/screenshot's. xgb's extension Init writes
// process-wide maps that the reader goroutine of every open xgb connection
// reads without a lock, so two connections set up at once (a monitor list
// while a portable capture runs, two capturers opening) could crash the
// process with a concurrent map access.
var xgbMu sync.Mutex

// OpenPortable opens the portable path (github.com/kbinani/screenshot) for
// monitor display (an index into Displays), whatever the platform offers.
func OpenPortable(display int) (Capturer, error) {
	if err := checkPortable(display); err != nil {
		return nil, err
	}
	xgbMu.Lock()
	n := screenshot.NumActiveDisplays()
	var b image.Rectangle
	if display < n {
		b = screenshot.GetDisplayBounds(display)
	}
	xgbMu.Unlock()
	if n == 0 {
		return nil, fmt.Errorf("screenshot finds no monitor: %w", ErrNoDisplay)
	}
	if display >= n {
		return nil, fmt.Errorf("monitor %d: %w (screenshot finds %d)", display, ErrNoMonitor, n)
	}
	if b.Empty() {
		return nil, fmt.Errorf("monitor %d has empty bounds %v: %w", display, b, ErrNoMonitor)
	}
	p := &portable{display: display, bounds: b, done: make(chan struct{})}
	p.frame = Frame{Width: b.Dx(), Height: b.Dy(), Stride: 4 * b.Dx(), Pix: make([]byte, 4*b.Dx()*b.Dy())}
	return p, nil
}

// portable captures through kbinani/screenshot. The monitor bounds are read
// once: asking again per frame would cost one more X connection each time.
//
// WaitChange polls: it grabs the monitor and compares tile hashes with
// those of the picture the last Capture returned. When they differ it keeps
// the grabbed picture, and a Capture soon after returns it instead of
// paying for a second grab.
type portable struct {
	mu      sync.Mutex // serialises grabs and guards what follows
	display int
	bounds  image.Rectangle
	frame   Frame
	closed  bool
	done    chan struct{} // closed by Close, to wake WaitChange

	captured bool        // Capture has returned a picture
	seen     tileHashes  // of the picture the last Capture returned
	probe    tileHashes  // of the last picture grabbed
	ready    *image.RGBA // a changed picture a poll grabbed, not yet returned by Capture
	readyAt  time.Time
	nextPoll time.Time
}

func (p *portable) Capture() (*Frame, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("capture monitor %d: %w", p.display, ErrClosed)
	}
	img := p.ready
	if img == nil || time.Since(p.readyAt) > pollInterval {
		var err error
		if img, err = p.grab(); err != nil {
			return nil, err
		}
		p.probe.compute(img.Pix, img.Stride, p.frame.Width, p.frame.Height)
	}
	p.frame.Changed = p.seen.diff(&p.probe)
	p.seen.copyFrom(&p.probe)
	p.ready = nil
	p.captured = true
	rgbaToBGRA(p.frame.Pix, p.frame.Stride, img.Pix, img.Stride, p.frame.Width, p.frame.Height)
	return &p.frame, nil
}

// grab takes a new picture of the monitor. Callers hold mu.
func (p *portable) grab() (*image.RGBA, error) {
	xgbMu.Lock()
	img, err := screenshot.CaptureRect(p.bounds)
	xgbMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("capture monitor %d (%v) with screenshot: %w", p.display, p.bounds, err)
	}
	if img.Rect.Dx() != p.frame.Width || img.Rect.Dy() != p.frame.Height {
		return nil, fmt.Errorf("capture monitor %d: screenshot returned %v, want %dx%d", p.display, img.Rect, p.frame.Width, p.frame.Height)
	}
	return img, nil
}

func (p *portable) WaitChange(ctx context.Context, timeout time.Duration) (bool, error) {
	return pollUntil(ctx, timeout, p.done, p.display, func(now bool) (bool, time.Time, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.check(now)
	})
}

// pollUntil calls check until it sees a change, fails, or timeout passes.
// Between calls it sleeps until the next poll is due or the deadline,
// whichever is first; the poll cadence carries over between calls, so
// callers with short timeouts do not poll any faster. A timeout <= 0
// checks once.
func pollUntil(ctx context.Context, timeout time.Duration, closed <-chan struct{}, display int, check func(now bool) (bool, time.Time, error)) (bool, error) {
	deadline := time.Now().Add(timeout)
	var timer *time.Timer
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		changed, next, err := check(timeout <= 0)
		if err != nil || changed || timeout <= 0 {
			return changed, err
		}
		now := time.Now()
		if !now.Before(deadline) {
			return false, nil
		}
		d := earliest(next, deadline).Sub(now)
		if timer == nil {
			timer = time.NewTimer(d)
			defer timer.Stop()
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-closed:
			return false, fmt.Errorf("wait for a change on monitor %d: %w", display, ErrClosed)
		case <-timer.C:
		}
	}
}

// check reports whether a change since the last Capture is known, polling
// when a poll is due (or now is set), and when the next poll is due.
// Callers hold mu.
func (p *portable) check(now bool) (changed bool, next time.Time, err error) {
	if p.closed {
		return false, time.Time{}, fmt.Errorf("wait for a change on monitor %d: %w", p.display, ErrClosed)
	}
	if !p.captured || p.ready != nil {
		return true, time.Time{}, nil
	}
	if !now && time.Now().Before(p.nextPoll) {
		return false, p.nextPoll, nil
	}
	img, err := p.grab()
	p.nextPoll = time.Now().Add(pollInterval)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("poll for a change: %w", err)
	}
	p.probe.compute(img.Pix, img.Stride, p.frame.Width, p.frame.Height)
	if p.probe.equal(&p.seen) {
		return false, p.nextPoll, nil
	}
	p.ready, p.readyAt = img, time.Now()
	return true, time.Time{}, nil
}

// rgbaToBGRA swaps R and B and makes every pixel opaque. Two pixels per
// 64-bit word: at 1920x1080 this takes 2.5 ms against 5 ms one pixel at a
// time.
func rgbaToBGRA(dst []byte, dstStride int, src []byte, srcStride, width, height int) {
	n := 4 * width
	for y := 0; y < height; y++ {
		s := src[y*srcStride : y*srcStride+n]
		d := dst[y*dstStride : y*dstStride+n]
		i := 0
		for ; i+8 <= n; i += 8 {
			v := binary.LittleEndian.Uint64(s[i:])
			v = v&0x0000ff000000ff00 | v>>16&0x000000ff000000ff | (v&0x000000ff000000ff)<<16 | 0xff000000ff000000
			binary.LittleEndian.PutUint64(d[i:], v)
		}
		if i < n { // odd width
			v := binary.LittleEndian.Uint32(s[i:])
			v = v&0x0000ff00 | v>>16&0xff | (v&0xff)<<16 | 0xff000000
			binary.LittleEndian.PutUint32(d[i:], v)
		}
	}
}

func (p *portable) Size() (int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frame.Width, p.frame.Height
}

func (p *portable) Bounds() (x, y, w, h int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bounds.Min.X, p.bounds.Min.Y, p.bounds.Dx(), p.bounds.Dy()
}

func (p *portable) Name() string { return NamePortable }

func (p *portable) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	p.frame.Pix = nil
	p.ready = nil
	return nil
}

// earliest is the earlier of a and b, where the zero time counts as never.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}
