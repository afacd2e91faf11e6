// Package limit keeps rate limits per source of requests: an address, an
// account. Sign-in and support-code attempts are limited with it.
package limit

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxKeys bounds the sources remembered at once (some 6 MB). An attacker
// who keeps them all at their limit, to lock out sources new to the
// table, must send a new attempt from each source whenever it gets one
// back: 50,000 sources at the sign-in limit (20 a minute) are 17,000
// requests a second.
const maxKeys = 50000

// Source names the sender of r for limits: its IPv4 address, or its IPv6
// /64 network, which one subscriber commonly holds whole and can pick
// addresses from at will.
func Source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() != nil {
		return host
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}

// Take takes one attempt from lim if there is one; otherwise it says how
// long until there is, taking nothing.
func Take(lim *rate.Limiter, now time.Time) time.Duration {
	d, _ := Reserve(lim, now)
	return d
}

// Reserve is Take for an attempt that may turn out not to count (a support
// code that was right): giveBack returns it to lim. It does nothing when
// nothing was taken.
func Reserve(lim *rate.Limiter, now time.Time) (wait time.Duration, giveBack func()) {
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, func() {}
	}
	return 0, func() { r.CancelAt(now) }
}

// Keyed is a token bucket per key: perMinute attempts a minute, burst at
// once.
type Keyed struct {
	perMinute, burst int

	mu     sync.Mutex
	lims   map[string]*rate.Limiter
	pruned time.Time // the last look for idle keys in a full table
}

// New returns limits of perMinute attempts a minute, burst at once, for
// each key.
func New(perMinute, burst int) *Keyed {
	return &Keyed{perMinute: perMinute, burst: burst, lims: map[string]*rate.Limiter{}}
}

// Take takes one attempt for key at now, or says how long to wait for
// one. Keys not being limited (with an attempt left) are forgotten when
// room is needed, looked for at most once a second (a look reads every
// key): sources that each tried once must not lock out the next. While
// more than maxKeys sources are all being limited (an attack from many
// addresses), a new one waits a minute.
func (k *Keyed) Take(key string, now time.Time) time.Duration {
	d, _ := k.Reserve(key, now)
	return d
}

// Reserve is Take for an attempt that may turn out not to count:
// giveBack returns it to key's budget.
func (k *Keyed) Reserve(key string, now time.Time) (wait time.Duration, giveBack func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	lim := k.lims[key]
	if lim == nil {
		if len(k.lims) >= maxKeys {
			if now.Sub(k.pruned) >= time.Second {
				k.pruned = now
				for old, l := range k.lims {
					if l.TokensAt(now) >= 1 {
						delete(k.lims, old)
					}
				}
			}
			if len(k.lims) >= maxKeys {
				return time.Minute, func() {}
			}
		}
		lim = rate.NewLimiter(rate.Limit(float64(k.perMinute)/60), k.burst)
		k.lims[key] = lim
	}
	return Reserve(lim, now)
}
