package relay

import (
	"maps"
	"math"
	"slices"
	"time"

	"github.com/pion/rtcp"

	"github.com/tether-support/tether/internal/protocol"
)

// The relay forwards the host's video as it is, so each viewer receives
// the bitrate the host sends: the host is told (REMB, as media servers
// do) the least that any watching viewer's link carries, by congestion
// control on the broker's side of that link.
const (
	// limitEvery is how often the host is told again when nothing
	// changed much, in case a report was lost.
	limitEvery = time.Second
	// limitChange is the relative change told at once.
	limitChange = 0.05
	// noLimit is what the host is told when no viewer limits it.
	noLimit = 1 << 30
	// viewerStartBitrate is the least a viewer's congestion control
	// starts from, bits/s: what the host's own starts from at 1920x1080.
	// On a narrower link the first second or two lose packets (measured
	// at 500 kbit/s: down to 300 kbit/s in 2.5 s).
	viewerStartBitrate = 4_000_000
)

// setBitrate takes congestion control's new estimate of the viewer's link.
func (v *Viewer) setBitrate(bps int) {
	v.bitrate.Store(int64(bps))
	v.s.limitHost()
}

// limit is what the viewer's link carries, bits/s, or 0 when the viewer
// is not watching.
func (v *Viewer) limit() int {
	if !v.allowed(protocol.PermView) {
		return 0
	}
	return int(v.bitrate.Load())
}

// limitHost tells the host what the narrowest watching viewer's link
// carries, when that changed or limitEvery has passed.
func (s *Session) limitHost() {
	s.mu.Lock()
	viewers := slices.Collect(maps.Keys(s.viewers))
	s.mu.Unlock()
	limit := noLimit
	for _, v := range viewers {
		if bps := v.limit(); bps > 0 {
			limit = min(limit, bps)
		}
	}
	s.mu.Lock()
	host, ssrc := s.host, s.hostSSRC
	changed := math.Abs(float64(limit-s.limit)) > limitChange*float64(s.limit)
	if host == nil || ssrc == 0 || s.closed || (!changed && time.Since(s.limitAt) < limitEvery) {
		s.mu.Unlock()
		return
	}
	s.limit, s.limitAt = limit, time.Now()
	s.mu.Unlock()
	if err := host.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: float32(limit), SSRCs: []uint32{uint32(ssrc)}}}); err != nil {
		s.cfg.Logger.Debug("tell the host the viewers' limit", "err", err)
	}
}

// ViewerBitrate is what the narrowest watching viewer's link carries, as
// the host was last told, bits/s; 0 when no viewer limits the video.
func (s *Session) ViewerBitrate() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit == noLimit {
		return 0
	}
	return s.limit
}

// rateMeter measures a rate over whole seconds.
type rateMeter struct {
	bytes int
	since time.Time
	bps   int // over the last whole second
}

func (m *rateMeter) add(n int, now time.Time) {
	if d := now.Sub(m.since); d >= time.Second {
		m.bps = int(float64(m.bytes*8) / d.Seconds())
		m.bytes, m.since = 0, now
	}
	m.bytes += n
}

// rate is the rate over the last whole second, bits/s.
func (m *rateMeter) rate(now time.Time) int {
	if now.Sub(m.since) >= 2*time.Second {
		return 0 // nothing for a second
	}
	return m.bps
}
