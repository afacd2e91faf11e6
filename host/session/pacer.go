package session

import "time"

// pacer keeps the video within the bitrate congestion control allows
// without holding back a frame the network has room for. Every frame sent
// is a debt of its size in bits, repaid at the current bitrate; the next
// frame waits only while some debt remains. A click after a quiet moment
// goes out at once, and a screen that changes all the time gets as many
// frames as the bitrate carries, each as sharp: under congestion the frame
// rate gives way, never the resolution.
type pacer struct {
	debt float64   // bits sent and not yet paid for
	at   time.Time // when debt was last brought up to date
}

// wait is how long the next frame must wait at bps bits/s.
func (p *pacer) wait(now time.Time, bps int) time.Duration {
	p.repay(now, bps)
	return time.Duration(p.debt / float64(bps) * float64(time.Second))
}

// sent books a frame of n bytes sent at now.
func (p *pacer) sent(now time.Time, bps, n int) {
	p.repay(now, bps)
	p.debt += float64(8 * n)
}

func (p *pacer) repay(now time.Time, bps int) {
	if !p.at.IsZero() {
		p.debt = max(0, p.debt-float64(bps)*now.Sub(p.at).Seconds())
	}
	p.at = now
}
