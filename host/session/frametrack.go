package session

import (
	"fmt"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/rtc"
)

// rtpMTU is the largest RTP packet the host sends, as pion's own tracks.
const rtpMTU = 1200

// frameTrack sends encoded frames stamped with the moment each was
// captured. pion's sample track stamps a frame with the sum of the
// durations of the frames before it, a duration being known only when the
// next frame comes: given the time since the frame before, each frame
// carried the previous one's time, and a change after a still second was
// recorded, and shown in the player, a second before it happened.
type frameTrack struct {
	*webrtc.TrackLocalStaticRTP
	packetizer rtp.Packetizer
	stamped    uint32 // clock units from start to the last frame

	// start and first are written once, by the first frame, and read by
	// stamp on another goroutine.
	mu    sync.Mutex
	start time.Time // the first frame's capture
	first uint32    // the first frame's RTP timestamp
}

func newFrameTrack() (*frameTrack, error) {
	t, err := webrtc.NewTrackLocalStaticRTP(rtc.VP8, "screen", "tether")
	if err != nil {
		return nil, fmt.Errorf("create video track: %w", err)
	}
	// The payload type and SSRC are the track's to set on each write.
	p := rtp.NewPacketizer(rtpMTU, 0, 0, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), rtc.VP8.ClockRate)
	return &frameTrack{TrackLocalStaticRTP: t, packetizer: p}, nil
}

// writeFrame sends one encoded frame captured at at.
func (t *frameTrack) writeFrame(data []byte, at time.Time) error {
	t.mu.Lock()
	start := t.start
	t.mu.Unlock()
	begin := start.IsZero()
	if begin {
		start = at
	}
	units := clockUnits(at.Sub(start), rtc.VP8.ClockRate)
	t.packetizer.SkipSamples(units - t.stamped) // wraps as RTP time does
	t.stamped = units
	packets := t.packetizer.Packetize(data, 0)
	if begin && len(packets) > 0 {
		t.mu.Lock()
		t.start, t.first = at, packets[0].Timestamp
		t.mu.Unlock()
	}
	for _, p := range packets {
		if err := t.WriteRTP(p); err != nil {
			return err
		}
	}
	return nil
}

// stamp is the RTP timestamp of a frame captured at at; 0 before the
// first frame, when there is no frame to tell apart from another.
func (t *frameTrack) stamp(at time.Time) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.start.IsZero() || at.Before(t.start) {
		return 0
	}
	return t.first + clockUnits(at.Sub(t.start), rtc.VP8.ClockRate)
}

// clockUnits converts d to units of a clock of rate Hz, modulo 2^32, without
// overflowing however long the session.
func clockUnits(d time.Duration, rate uint32) uint32 {
	return uint32(d/time.Second)*rate + uint32(d%time.Second*time.Duration(rate)/time.Second)
}
