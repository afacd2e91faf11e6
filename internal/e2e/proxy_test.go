package e2e

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/launch"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// TestBehindReverseProxy: with a TLS-terminating reverse proxy in front
// (here Go's own, as nginx or Caddy would be set up: Host kept,
// X-Forwarded-For appended, WebSocket upgrades passed on), each user keeps
// their own allowance of code attempts instead of sharing the proxy's,
// links name the proxy's address, and a host reaches its session through
// it. A client that reaches the broker directly cannot pick its address by
// writing the header itself.
func TestBehindReverseProxy(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	proxy := httptest.NewUnstartedServer(nil)
	proxyURL := "https://" + proxy.Listener.Addr().String()
	port := freeTCPPort(t)
	b := startBrokerWith(t, func(c *server.Config) {
		c.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.PublicURL = proxyURL
		c.HostBinary = xtest.Build(t, "./host")
	})
	direct, _ := url.Parse(fmt.Sprintf("https://localhost:%d", port))
	brokerTLS, err := dial.TLSConfig(b.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	proxy.Config.Handler = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(direct)
			r.SetXForwarded()
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{TLSClientConfig: brokerTLS},
	}
	proxy.StartTLS()
	t.Cleanup(proxy.Close)
	proxyCA := filepath.Join(t.TempDir(), "proxy.pem")
	os.WriteFile(proxyCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Certificate().Raw}), 0o644)

	// from is a client at 127.0.0.n, through the proxy or straight to the broker.
	from := func(n int, viaProxy bool) *http.Client {
		tr := proxy.Client().Transport.(*http.Transport).Clone()
		if !viaProxy {
			tr = &http.Transport{TLSClientConfig: brokerTLS}
		}
		tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}}).DialContext
		return &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	wrong := func(c *http.Client, base string, i int) int {
		resp, _ := get(t, c, fmt.Sprintf("%s/join/%09d", base, 500000000+i), linuxUA)
		return resp.StatusCode
	}
	alice := from(2, true)
	for i := range 10 {
		if got := wrong(alice, proxyURL, i); got != 404 {
			t.Fatalf("wrong code %d through the proxy: %d, want 404", i+1, got)
		}
	}
	if got := wrong(alice, proxyURL, 10); got != 429 {
		t.Fatalf("the eleventh wrong code from one user: %d, want 429", got)
	}
	if got := wrong(from(3, true), proxyURL, 11); got != 404 {
		t.Fatalf("another user behind the same proxy: %d, want 404 (their own allowance)", got)
	}
	req, _ := http.NewRequest("GET", direct.String()+"/join/599999999", nil)
	req.Header.Set("X-Forwarded-For", "10.9.9.9")
	resp, err := from(2, false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 {
		t.Fatalf("a client straight to the broker naming itself 10.9.9.9: %d, want 429 (its own address, out of tries)", resp.StatusCode)
	}

	// The trail names the user's address, not the proxy's.
	status, out := apiCall(t, b.httpClient(t), "GET", direct.String()+"/api/v1/audit/codes", b.admin.APIKey, "", nil)
	if status != 200 || !strings.Contains(fmt.Sprint(out), "127.0.0.2") || strings.Contains(fmt.Sprint(out), "127.0.0.1 ") {
		t.Fatalf("code attempts audit: %d %v", status, out)
	}

	// Links name the proxy; a host reaches its session through it.
	status, sess := apiCall(t, b.httpClient(t), "POST", direct.String()+"/api/v1/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-PROXY"}}`, nil)
	if status != 201 || !strings.HasPrefix(fmt.Sprint(sess["join_url"]), proxyURL+"/join/") {
		t.Fatalf("create: %d %v, want a join link through %s", status, sess, proxyURL)
	}
	// The host a join page offers calls the proxy, and trusts the
	// certificates the user's system trusts, as the proxy's would be.
	resp, program := get(t, from(5, true), proxyURL+"/join/"+sess["code"].(string)+"/host", linuxUA)
	downloaded := filepath.Join(t.TempDir(), "tether-host")
	os.WriteFile(downloaded, []byte(program), 0o755)
	if settings, err := launch.Read(downloaded); resp.StatusCode != 200 || err != nil || settings.Broker != proxyURL || settings.CAPEM != "" {
		t.Fatalf("the join page's host: %d, settings %+v, %v; want the proxy's address and no development CA", resp.StatusCode, settings, err)
	}
	host := startHost(t, display, "-broker", proxyURL, "-ca", proxyCA, sess["code"].(string))
	c, err := client.New(client.Config{Broker: direct, CAFile: b.CAFile(), Token: b.admin.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.Join(context.Background(), sess["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	waitState(t, c, sess["id"].(string), "active", host)
}
