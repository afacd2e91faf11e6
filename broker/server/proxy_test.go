package server

import (
	"strings"
	"testing"
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
