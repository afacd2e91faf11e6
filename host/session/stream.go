package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-support/tether/host/capture"
	"github.com/tether-support/tether/host/encode"
	"github.com/tether-support/tether/internal/protocol"
)

const (
	// changePoll bounds how long the loop sleeps in WaitChange, so that a
	// keyframe request on a still screen is answered within it.
	changePoll = 20 * time.Millisecond
	// Up to settleFrames more frames are encoded after the screen stops
	// changing, settleEvery apart, so that the last picture reaches full
	// quality instead of staying at the quality of a busy moment. Each
	// codes again only what was left coarse, with 100 ms of bitrate to
	// spend, and none is sent once nothing is (a frame to encode could
	// delay the next change). A detailed 640x480 desktop at 1 Mbit/s
	// takes 14.
	settleFrames = 20
	settleEvery  = 100 * time.Millisecond
	// keyframeEvery is the slow periodic keyframe, sent only with a frame
	// that is sent anyway (a still screen still sends nothing), and never
	// with the first change after a still moment: that is the
	// technician's click, which a keyframe would hold up for as long as it
	// takes to send the whole picture (half a second on a narrow link).
	keyframeEvery = 20 * time.Second
	// minBitrate is the least the video is ever given, bits/s.
	minBitrate = 150_000
)

// streamer captures the shared display when it changes, encodes and
// sends. Under congestion it lowers the frame rate, not the resolution.
type streamer struct {
	log    *slog.Logger
	track  *frameTrack
	maxFPS int
	// keyEvery is the periodic keyframe's interval: keyframeEvery when 0.
	keyEvery time.Duration
	// allow says whether the user lets anyone see the screen now: no
	// pixel is captured, let alone sent, otherwise.
	allow func(perm string) bool

	keyframe atomic.Bool  // set by keyframe requests
	bitrate  atomic.Int64 // target from congestion control, bits/s; 0 = none yet
	limit    atomic.Int64 // what the broker's narrowest viewer receives, bits/s; 0 = no limit

	mu      sync.Mutex
	capt    capture.Capturer
	display int
	// shownFrom is when the capturer before was closed: every frame
	// captured since shows display.
	shownFrom time.Time
	// using is held while a captured frame is read (converted and
	// encoded): its pixels are the capturer's shared memory, which Close
	// gives back, so a display switch closes the old capturer only once
	// that is done.
	using sync.Mutex
}

// setDisplay switches to another monitor.
func (s *streamer) setDisplay(index int) (capture.Capturer, error) {
	c, err := capture.Open(index)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	old := s.capt
	s.capt, s.display = c, index
	s.mu.Unlock()
	s.keyframe.Store(true)
	if old != nil {
		s.using.Lock()
		old.Close()
		s.mu.Lock()
		s.shownFrom = time.Now()
		s.mu.Unlock()
		s.using.Unlock()
	}
	return c, nil
}

// reopen opens the shared display afresh after the stream stopped on an
// error (a capturer closed under it, a monitor unplugged); when that
// display is gone, the primary one is shared instead.
func (s *streamer) reopen() error {
	s.mu.Lock()
	index := s.display
	s.mu.Unlock()
	if _, err := s.setDisplay(index); err == nil || index == 0 {
		return err
	}
	_, err := s.setDisplay(0)
	return err
}

// follow opens the shared monitor again when a new layout m of the
// user's monitors moved it or changed its size without resizing the
// screen (the user dragged it elsewhere in the display settings): the
// capturer would go on grabbing the old place, another monitor's picture.
func (s *streamer) follow(m protocol.ControlMessage) {
	for _, d := range m.Displays {
		if d.Index != m.Current {
			continue
		}
		x, y, w, h := s.current().Bounds()
		if d.X == x && d.Y == y && d.Width == w && d.Height == h {
			return
		}
		if _, err := s.setDisplay(d.Index); err != nil {
			s.log.Warn("follow the shared monitor to its new place", "display", d.Index, "err", err)
		}
		return
	}
}

func (s *streamer) current() capture.Capturer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.capt
}

// displays describes the host's monitors for the technician.
func (s *streamer) displays() (protocol.ControlMessage, error) {
	list, err := capture.Displays()
	if err != nil {
		return protocol.ControlMessage{}, err
	}
	s.mu.Lock()
	current, from := s.display, s.shownFrom
	s.mu.Unlock()
	msg := protocol.ControlMessage{Type: protocol.ControlDisplays, Current: current}
	if !from.IsZero() && s.track != nil {
		msg.ShownFrom = s.track.stamp(from)
	}
	for _, d := range list {
		if len(msg.Displays) == protocol.MaxDisplays {
			break
		}
		msg.Displays = append(msg.Displays, protocol.Display{Index: d.Index, Name: d.Name, X: d.X, Y: d.Y, Width: d.Width, Height: d.Height, Primary: d.Primary})
	}
	return msg, nil
}

// target is the bitrate the video may use: what congestion control
// estimates the link to the broker carries, or less when the broker says
// a viewer's link carries less (it relays the video as it is, so every
// viewer gets what the narrowest can take); 0 while neither is known.
func (s *streamer) target() int {
	bps, limit := int(s.bitrate.Load()), int(s.limit.Load())
	if limit > 0 && (bps == 0 || limit < bps) {
		return limit
	}
	return bps
}

// setLimit takes the broker's word on the most its viewers receive, never
// below the least the video is ever given.
func (s *streamer) setLimit(bps float32) {
	s.limit.Store(int64(max(bps, minBitrate)))
}

// rate is the bitrate to pace the video at: the target once there is one,
// before that what the resolution deserves.
func (s *streamer) rate(nominalBPS int) int {
	if bps := s.target(); bps > 0 {
		return bps
	}
	return max(nominalBPS, 1_000_000)
}

// restartAfter is how long the stream waits before it starts over after
// an error: an error that comes back at once (a display that cannot be
// captured) is logged once a second, not in a busy loop.
const restartAfter = time.Second

// serve streams until ctx ends. A capture or encode error (a monitor
// unplugged, a capturer closed under the stream) starts it over on the
// display shared now, or on the primary one if that is gone; lost is
// called, and serve returns, when the display itself is gone.
func (s *streamer) serve(ctx context.Context, lost func()) {
	for {
		err := s.run(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Error("streaming stopped; starting over", "err", err)
		if !errors.Is(err, capture.ErrNoDisplay) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(restartAfter):
			}
			err = s.reopen()
		}
		if errors.Is(err, capture.ErrNoDisplay) {
			lost()
			return
		}
		if err != nil {
			s.log.Error("reopen the display", "err", err)
		}
	}
}

func (s *streamer) run(ctx context.Context) error {
	var enc *encode.VP8
	defer func() {
		if enc != nil {
			enc.Close()
		}
	}()
	var (
		encW, encH int
		nominalBPS int       // the bitrate the resolution deserves
		setKbps    int       // the bitrate the encoder runs at
		lastSent   time.Time // when the last frame went out
		lastChange time.Time // when the last change was captured
		lastKey    time.Time // when the last keyframe went out
		settle     int
		pace       pacer
	)
	for ctx.Err() == nil {
		if !s.allow(protocol.PermView) {
			// A new viewer, or the end of a pause, starts from a keyframe.
			s.keyframe.Store(true)
			settle = 0
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(changePoll):
			}
			continue
		}
		capt := s.current()
		changed, err := capt.WaitChange(ctx, changePoll)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, capture.ErrClosed) && s.current() != capt:
			continue // the technician switched displays meanwhile
		case err != nil:
			return fmt.Errorf("watch screen: %w", err)
		}
		if !s.allow(protocol.PermView) {
			continue // the user paused the session during the wait
		}
		switch {
		case changed:
			settle = settleFrames
		case s.keyframe.Load():
		case settle > 0 && time.Since(lastSent) >= settleEvery:
			settle--
		default:
			continue
		}
		// Wait while the bitrate has not paid for the frames already sent,
		// and keep changes at least 1/maxFPS apart (the settle frames and
		// keyframes in between do not count: a change right after one
		// goes out at once). The capture comes after the wait, so it holds
		// every change made meanwhile.
		bps := s.rate(nominalBPS)
		wait := pace.wait(time.Now(), bps)
		if changed {
			wait = max(wait, time.Second/time.Duration(s.maxFPS)-time.Since(lastChange))
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		if !s.allow(protocol.PermView) {
			continue // the user paused the session during the wait
		}
		if changed {
			lastChange = time.Now()
		}
		var capturedAt time.Time
		data, key, err := func() ([]byte, bool, error) {
			s.using.Lock()
			defer s.using.Unlock()
			capturedAt = time.Now() // after shownFrom, when capt is the display switched to
			frame, err := capt.Capture()
			if err != nil {
				return nil, false, fmt.Errorf("capture: %w", err)
			}
			if enc == nil || frame.Width != encW || frame.Height != encH {
				if enc != nil {
					enc.Close()
				}
				enc, err = encode.NewVP8(encode.Config{Width: frame.Width, Height: frame.Height, FPS: s.maxFPS})
				if err != nil {
					return nil, false, err
				}
				encW, encH = frame.Width, frame.Height
				setKbps = encode.DefaultBitrateKbps(encW, encH)
				nominalBPS = setKbps * 1000
				s.keyframe.Store(true)
			}
			if bps := s.target(); bps > 0 {
				if kbps := min(bps, nominalBPS) / 1000; kbps != setKbps && kbps > 0 {
					if err := enc.SetBitrate(kbps); err != nil {
						s.log.Debug("set bitrate", "err", err)
					}
					setKbps = kbps
				}
			}
			// Only what changed is coded; a settle frame whose capture
			// found nothing refines what is coarse. One that found
			// something (a paint after the wait, whose damage this capture
			// took) codes it as a change, and the settling starts over.
			if !changed && !frame.Changed.Empty() {
				settle = settleFrames
			}
			every := cmp.Or(s.keyEvery, keyframeEvery)
			periodic := !lastKey.IsZero() && time.Since(lastKey) >= every && (!changed || time.Since(lastSent) < time.Second)
			return enc.EncodeArea(frame.Pix, frame.Stride, s.keyframe.Load() || periodic, frame.Changed)
		}()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, capture.ErrClosed) && s.current() != capt:
			continue // the technician switched displays meanwhile
		case err != nil:
			return err
		}
		if key {
			s.keyframe.Store(false)
			// A keyframe codes the whole picture at once, coarsely on a
			// narrow link: the settle frames sharpen it, as after a change.
			lastKey, settle = time.Now(), settleFrames
		}
		if len(data) == 0 {
			continue
		}
		now := time.Now()
		if err := s.track.writeFrame(data, capturedAt); err != nil {
			return fmt.Errorf("send frame: %w", err)
		}
		pace.sent(now, bps, len(data))
		lastSent = now
		if enc.Settled() {
			settle = 0
		}
	}
	return nil
}
