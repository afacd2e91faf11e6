package rtc

import (
	"context"
	"errors"
	"time"

	"github.com/pion/webrtc/v4"
)

// Marks are a data channel's back-pressure marks: a sender stops queueing
// above High bytes and resumes once the channel has drained below Low.
type Marks struct{ High, Low uint64 }

var (
	// BulkMarks keep megabytes under way, so that a file moves at the
	// link's pace over a long round trip.
	BulkMarks = Marks{High: 4 << 20, Low: 1 << 20}
	// TerminalMarks keep little under way: a terminal draws far slower than
	// the link carries, and all that is under way when the technician
	// presses Ctrl+C still scrolls by before the prompt comes back (with
	// BulkMarks, seconds of `yes` in the console).
	TerminalMarks = Marks{High: 256 << 10, Low: 64 << 10}
)

// ErrChannelClosed is returned when sending on a channel that closed.
var ErrChannelClosed = errors.New("data channel closed")

// Flow sends on a data channel with back-pressure, so that a fast sender
// never queues more than a few megabytes in memory.
type Flow struct {
	dc    *webrtc.DataChannel
	marks Marks
	low   chan struct{}
}

// NewFlow sets dc's buffered-amount threshold to m.Low and returns its
// sender. It takes over dc's OnBufferedAmountLow callback.
func NewFlow(dc *webrtc.DataChannel, m Marks) *Flow {
	f := &Flow{dc: dc, marks: m, low: make(chan struct{}, 1)}
	dc.SetBufferedAmountLowThreshold(m.Low)
	dc.OnBufferedAmountLow(func() {
		select {
		case f.low <- struct{}{}:
		default:
		}
	})
	return f
}

// wait blocks while the channel holds more than the high mark.
func (f *Flow) wait(ctx context.Context) error {
	for f.dc.BufferedAmount() > f.marks.High {
		if f.dc.ReadyState() != webrtc.DataChannelStateOpen {
			return ErrChannelClosed
		}
		select {
		case <-f.low:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond): // a closed channel never drains
		}
	}
	return nil
}

// Buffered is how many bytes are queued and not yet sent.
func (f *Flow) Buffered() int64 { return int64(f.dc.BufferedAmount()) }

// Send queues binary data once there is room.
func (f *Flow) Send(ctx context.Context, data []byte) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	if f.dc.ReadyState() != webrtc.DataChannelStateOpen {
		return ErrChannelClosed
	}
	return f.dc.Send(data)
}

// SendText queues a string message once there is room.
func (f *Flow) SendText(ctx context.Context, text string) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	if f.dc.ReadyState() != webrtc.DataChannelStateOpen {
		return ErrChannelClosed
	}
	return f.dc.SendText(text)
}
