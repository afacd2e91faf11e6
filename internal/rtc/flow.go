package rtc

import (
	"context"
	"errors"
	"time"

	"github.com/pion/webrtc/v4"
)

// Back-pressure marks for bulk data channels (files, shell output): a
// sender stops queueing above flowHigh and resumes once the channel has
// drained below flowLow.
const (
	flowHigh = 4 << 20
	flowLow  = 1 << 20
)

// ErrChannelClosed is returned when sending on a channel that closed.
var ErrChannelClosed = errors.New("data channel closed")

// Flow sends on a data channel with back-pressure, so that a fast sender
// never queues more than a few megabytes in memory.
type Flow struct {
	dc  *webrtc.DataChannel
	low chan struct{}
}

// NewFlow sets dc's buffered-amount threshold and returns its sender. It
// takes over dc's OnBufferedAmountLow callback.
func NewFlow(dc *webrtc.DataChannel) *Flow {
	f := &Flow{dc: dc, low: make(chan struct{}, 1)}
	dc.SetBufferedAmountLowThreshold(flowLow)
	dc.OnBufferedAmountLow(func() {
		select {
		case f.low <- struct{}{}:
		default:
		}
	})
	return f
}

// wait blocks while the channel holds more than flowHigh bytes.
func (f *Flow) wait(ctx context.Context) error {
	for f.dc.BufferedAmount() > flowHigh {
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
