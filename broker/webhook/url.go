package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// ErrAddressNotAllowed is wrapped when an endpoint's host is, or resolves
// to, an address the broker will not call.
var ErrAddressNotAllowed = errors.New("address not allowed")

// FieldError is a rejected field of an admin's request, with a stable
// code for programs and a sentence for people.
type FieldError struct {
	Field   string
	Code    string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// maxURL bounds an endpoint URL.
const maxURL = 2048

// metadataAddrs are cloud metadata services outside the link-local ranges,
// which are refused as a whole.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IMDS over IPv6
	netip.MustParseAddr("fd00:ec2::23"),    // AWS EKS Pod Identity agent
	netip.MustParseAddr("fd20:ce::254"),    // Google Cloud metadata over IPv6
	netip.MustParseAddr("fd00:42::42"),     // Scaleway metadata over IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("192.0.0.192"),     // Oracle Cloud
}

// checkAddr says whether the broker may call addr. Private networks are
// allowed (ticket systems often live there); link-local and metadata
// addresses never are, so a URL cannot reach the cloud's instance
// credentials; loopback only when allowed.
func (c *Config) checkAddr(addr netip.Addr) error {
	addr = addr.Unmap()
	switch {
	case addr.IsLoopback():
		if c.AllowLoopback {
			return nil
		}
		return fmt.Errorf("%w: %s is this machine (loopback)", ErrAddressNotAllowed, addr)
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return fmt.Errorf("%w: %s is link-local (cloud metadata lives there)", ErrAddressNotAllowed, addr)
	case addr.IsUnspecified(), addr.IsMulticast(), addr.IsInterfaceLocalMulticast(), addr == netip.IPv4Unspecified(),
		addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%w: %s is not a unicast address", ErrAddressNotAllowed, addr)
	}
	for _, m := range metadataAddrs {
		if addr == m {
			return fmt.Errorf("%w: %s is a cloud metadata service", ErrAddressNotAllowed, addr)
		}
	}
	if addr.Is4() && addr.As4()[0] == 0 {
		return fmt.Errorf("%w: %s is in 0.0.0.0/8", ErrAddressNotAllowed, addr)
	}
	// An IPv6 address that carries an IPv4 one reaches it through a
	// gateway (NAT64, 6to4): it is checked as that address, and loopback
	// through a gateway is the gateway itself, never this machine.
	if v4, ok := carriedIPv4(addr); ok {
		if v4.IsLoopback() {
			return fmt.Errorf("%w: %s leads to loopback through a gateway", ErrAddressNotAllowed, addr)
		}
		if err := c.checkAddr(v4); err != nil {
			return fmt.Errorf("%w, and %s leads there", err, addr)
		}
	}
	return nil
}

var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	localNAT64 = netip.MustParsePrefix("64:ff9b:1::/48")  // RFC 8215: the IPv4 address in the last 32 bits, as /96
	siit       = netip.MustParsePrefix("::ffff:0:0:0/96") // RFC 2765 IPv4-translated
	sixToFour  = netip.MustParsePrefix("2002::/16")
)

// carriedIPv4 is the IPv4 address a NAT64 or 6to4 address stands for.
func carriedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case nat64.Contains(a), localNAT64.Contains(a), siit.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// resolve returns host's addresses, every one of them allowed.
func (c *Config) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs = []netip.Addr{a}
	} else {
		if addrs, err = c.LookupIP(ctx, host); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("resolve %s: no addresses", host)
		}
	}
	// One bad address refuses the host: a name that also points at the
	// metadata service is not trusted with the good ones.
	for _, a := range addrs {
		if err := c.checkAddr(a); err != nil {
			return nil, err
		}
	}
	return addrs, nil
}

// dial connects to an endpoint, checking the addresses it connects to
// rather than the ones seen at registration: DNS may have changed since.
func (c *Config) dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	addrs, err := c.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: c.Timeout, KeepAlive: 30 * time.Second}
	var errs []error
	for _, a := range addrs {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func isLoopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// CheckURL validates an endpoint URL as an admin gives it: https (http
// only to this machine, and only when AllowLoopback is set, for tests), no
// credentials, and a host that resolves to addresses the broker may call.
func (c *Config) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	bad := func(code, msg string) error { return &FieldError{Field: "url", Code: code, Message: msg} }
	if raw == "" {
		return nil, bad("invalid_url", "url is required.")
	}
	if len(raw) > maxURL {
		return nil, bad("invalid_url", "url must be at most 2048 bytes.")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, bad("invalid_url", "url must be an absolute URL such as https://tickets.example.com/tether.")
	}
	host := u.Hostname()
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && c.AllowLoopback && isLoopbackName(host):
	default:
		return nil, bad("invalid_url", "url must use https, such as https://tickets.example.com/tether: the broker sends webhooks only over HTTPS.")
	}
	if u.User != nil {
		return nil, bad("invalid_url", "url must not contain a user name or password; receivers check the signature instead.")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, bad("invalid_url", "url must not contain a fragment (#...).")
	}
	if p := u.Port(); p != "" {
		if n, err := net.LookupPort("tcp", p); err != nil || n == 0 {
			return nil, bad("invalid_url", "url has an invalid port.")
		}
	}
	lookupCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.resolve(lookupCtx, host); err != nil {
		if errors.Is(err, ErrAddressNotAllowed) {
			return nil, bad("url_not_allowed", "url points at an address the broker does not call: "+err.Error()+".")
		}
		why := "its name could not be looked up"
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			why = "no such name"
		}
		return nil, bad("url_unresolvable", "The broker could not find "+host+" ("+why+"): check the address in url.")
	}
	return u, nil
}
