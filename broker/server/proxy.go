package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ParseProxies reads -trusted-proxy: addresses or CIDR prefixes, separated
// by commas.
func ParseProxies(s string) ([]netip.Prefix, error) {
	var list []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			list = append(list, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("-trusted-proxy %q: give IP addresses or prefixes such as 10.0.0.5 or 10.0.0.0/24", f)
		}
		list = append(list, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return list, nil
}

// checkPublicURL accepts an https:// URL without a path: what users reach
// the broker by when a reverse proxy stands in front.
func checkPublicURL(s string) (string, error) {
	u, err := url.Parse(s)
	bad := err != nil || u.Scheme != "https" || u.Hostname() == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil
	if !bad && u.Port() != "" {
		port, err := strconv.Atoi(u.Port())
		bad = err != nil || port < 1 || port > 65535
	}
	if bad {
		return "", fmt.Errorf("-public-url %q: give the https:// address users reach the broker by, without a path, e.g. https://support.example.com or https://support.example.com:8443", s)
	}
	return "https://" + u.Host, nil
}

// realClient makes requests that come through a trusted reverse proxy
// carry the address of the client the proxy serves, from the
// X-Forwarded-For header it appends to: the limits on code attempts and
// sign-ins, the audit trail and the log then see each user, not the proxy.
// The header is read from the right, past the trusted proxies; what a
// client wrote into it itself lies further left and is never taken. A
// request that does not come from a trusted proxy keeps its own address,
// whatever it claims.
func realClient(trusted []netip.Prefix, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !isTrusted(peer.Addr()) {
			next.ServeHTTP(w, r)
			return
		}
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, ok := forwardedAddr(hops[i])
			if !ok {
				break // a proxy writes addresses only: stop at anything else
			}
			if !isTrusted(a) {
				r2 := r.Clone(r.Context())
				r2.RemoteAddr = net.JoinHostPort(a.Unmap().String(), "0")
				next.ServeHTTP(w, r2)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedAddr reads one hop of X-Forwarded-For: an address, which some
// load balancers write with the client's port ("203.0.113.7:51234",
// "[2001:db8::7]:443") or in brackets. Taken as no address, those would
// leave every user with the proxy's address.
func forwardedAddr(hop string) (netip.Addr, bool) {
	hop = strings.TrimSpace(hop)
	if a, err := netip.ParseAddr(hop); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(hop); err == nil {
		return ap.Addr(), true
	}
	if inner, ok := strings.CutPrefix(hop, "["); ok {
		if a, err := netip.ParseAddr(strings.TrimSuffix(inner, "]")); err == nil && strings.HasSuffix(inner, "]") {
			return a, true
		}
	}
	return netip.Addr{}, false
}
