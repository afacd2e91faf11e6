package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tether-support/tether/internal/limit"
)

// TestProxyFlags: -trusted-proxy and -public-url take what an admin would
// write and refuse the rest with a sentence saying what to give.
func TestProxyFlags(t *testing.T) {
	got, err := ParseProxies(" 10.0.0.5, 192.168.1.0/24,fd00::1 ,")
	if err != nil || len(got) != 3 || got[0].String() != "10.0.0.5/32" || got[1].String() != "192.168.1.0/24" || got[2].String() != "fd00::1/128" {
		t.Fatalf("ParseProxies = %v, %v", got, err)
	}
	if _, err := ParseProxies("proxy.example.com"); err == nil || !strings.Contains(err.Error(), "give IP addresses or prefixes") {
		t.Errorf("a host name: %v", err)
	}
	if u, err := checkPublicURL("https://support.example.com/"); err != nil || u != "https://support.example.com" {
		t.Errorf("checkPublicURL = %q, %v", u, err)
	}
	for _, bad := range []string{"http://support.example.com", "support.example.com", "https://support.example.com/tether", "https://"} {
		if _, err := checkPublicURL(bad); err == nil || !strings.Contains(err.Error(), "without a path") {
			t.Errorf("checkPublicURL(%q): %v", bad, err)
		}
	}
}

// TestForwardedForWithPort: proxies that write the client's port into
// X-Forwarded-For ("203.0.113.7:51234", "[2001:db8::7]:443"), as some
// cloud load balancers do, still name the client. Taken as no address at
// all, every user would share the proxy's allowance of sign-ins and code
// attempts, and a stranger's wrong passwords would lock an account out
// for everyone behind it.
func TestForwardedForWithPort(t *testing.T) {
	trusted, _ := ParseProxies("127.0.0.1")
	srv := httptest.NewServer(realClient(trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, limit.Source(r))
	})))
	defer srv.Close()
	for _, c := range []struct{ header, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"203.0.113.7:51234", "203.0.113.7"},
		{"[2001:db8::7]:443", "2001:db8::/64"},
		{"[2001:db8::7]", "2001:db8::/64"},
		{"198.51.100.1, 203.0.113.7:51234", "203.0.113.7"},
		{"not an address", "127.0.0.1"},
	} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("X-Forwarded-For", c.header)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != c.want {
			t.Errorf("X-Forwarded-For %q from a trusted proxy: the client is %q, want %q", c.header, got, c.want)
		}
	}
}
