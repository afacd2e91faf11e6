package rtc

import (
	"errors"
	"io"
	"maps"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// Packet pacing: a frame that fits the link's allowance goes out at once,
// the rest of a larger one at the congestion controller's target rate.
// Sent in one burst, a 150 KB keyframe meets a router queue that holds a
// few dozen KB on a narrow upload, which drops the rest: the frame is lost
// whole, the viewer asks for another keyframe, and it is lost the same way.
// A click's frame (a few KB) never waits.
const (
	// burstTime is how much of the target rate may go out at once, and
	// minBurst the least: about what a router queues at that rate.
	burstTime = 50 * time.Millisecond
	minBurst  = 16 << 10
	// maxQueued bounds the bytes waiting; past it packets are dropped and
	// the viewer asks for what it misses.
	maxQueued = 4 << 20
)

var errPacerQueueFull = errors.New("pacer: queue full, packet dropped")

// pacer is gcc's Pacer: congestion control sets its rate, and its writes
// reach the writer of each stream's SSRC.
type pacer struct {
	mu      sync.Mutex
	writers map[uint32]interceptor.RTPWriter
	rate    float64 // bytes per second
	burst   float64 // most bytes that may go at once
	tokens  float64 // bytes that may go now; negative after a large packet
	at      time.Time
	queue   []paced
	queued  int
	closed  bool
	wake    chan struct{}
	done    chan struct{}
}

type paced struct {
	header  rtp.Header
	payload []byte
	attrs   interceptor.Attributes
}

func newPacer(bps int) *pacer {
	p := &pacer{writers: map[uint32]interceptor.RTPWriter{}, at: time.Now(), wake: make(chan struct{}, 1), done: make(chan struct{})}
	p.setRate(bps)
	p.tokens = p.burst
	go p.run()
	return p
}

// AddStream registers the writer for a stream's packets.
func (p *pacer) AddStream(ssrc uint32, w interceptor.RTPWriter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writers[ssrc] = w
}

// SetTargetBitrate sets the rate in bits per second.
func (p *pacer) SetTargetBitrate(bps int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refill(time.Now())
	p.setRate(bps)
}

func (p *pacer) setRate(bps int) {
	p.rate = float64(max(bps, 1)) / 8
	p.burst = max(minBurst, p.rate*burstTime.Seconds())
	p.tokens = min(p.tokens, p.burst)
}

func (p *pacer) refill(now time.Time) {
	p.tokens = min(p.burst, p.tokens+p.rate*now.Sub(p.at).Seconds())
	p.at = now
}

// Write sends the packet now if the allowance has room and nothing waits
// before it, and queues a copy otherwise.
func (p *pacer) Write(header *rtp.Header, payload []byte, attrs interceptor.Attributes) (int, error) {
	n := header.MarshalSize() + len(payload)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, io.ErrClosedPipe
	}
	p.refill(time.Now())
	if len(p.queue) == 0 && p.tokens > 0 {
		p.tokens -= float64(n)
		return p.send(header, payload, attrs)
	}
	if p.queued+n > maxQueued {
		return 0, errPacerQueueFull
	}
	p.queue = append(p.queue, paced{header: header.Clone(), payload: append([]byte(nil), payload...), attrs: maps.Clone(attrs)})
	p.queued += n
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return n, nil
}

// send writes one packet; p.mu is held, which keeps the packets in order.
func (p *pacer) send(header *rtp.Header, payload []byte, attrs interceptor.Attributes) (int, error) {
	w, ok := p.writers[header.SSRC]
	if !ok {
		return 0, errors.New("pacer: no stream for the packet's SSRC")
	}
	return w.Write(header, payload, attrs)
}

// run sends what is queued as the allowance refills.
func (p *pacer) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		waiting := false
		var wait time.Duration
		for len(p.queue) > 0 {
			p.refill(time.Now())
			if p.tokens <= 0 {
				waiting, wait = true, time.Duration(-p.tokens/p.rate*float64(time.Second))
				break
			}
			next := p.queue[0]
			p.queue[0] = paced{}
			p.queue = p.queue[1:]
			n := next.header.MarshalSize() + len(next.payload)
			p.queued -= n
			p.tokens -= float64(n)
			p.send(&next.header, next.payload, next.attrs) // a failed write is a lost packet
		}
		p.mu.Unlock()
		if waiting {
			timer.Reset(max(wait, 100*time.Microsecond))
		}
		select {
		case <-p.done:
			return
		case <-p.wake:
			// A packet arrived: if the loop above found the allowance
			// spent, the timer still runs and the next pass waits again.
		case <-timer.C:
		}
	}
}

// Close stops the pacer; what is queued is dropped.
func (p *pacer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		p.queue, p.queued = nil, 0
		close(p.done)
	}
	return nil
}
