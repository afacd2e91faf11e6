package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/launch"
	"github.com/tether-support/tether/internal/xtest"
)

func get(t *testing.T, hc *http.Client, url, userAgent string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if userAgent != "" {
		req.Header.Set("User-Agent", userAgent)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// downloadedBroker is the broker a downloaded host program connects to.
func downloadedBroker(t *testing.T, bin string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tether-host")
	if err := os.WriteFile(path, []byte(bin), 0o600); err != nil {
		t.Fatal(err)
	}
	settings, err := launch.Read(path)
	if err != nil {
		t.Fatalf("downloaded settings: %v", err)
	}
	return settings.Broker
}

const linuxUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"

// TestJoinPage: the link a ticket system sends the user explains what is
// about to happen and offers the host with the code filled in; running the
// download is all the user does. Bad, used and guessed codes get clear
// answers, and guessing is rate-limited.
func TestJoinPage(t *testing.T) {
	const w, h = 800, 600
	display := xtest.StartXvfb(t, w, h)
	xtest.StartPattern(t, display)
	hostBin := xtest.Build(t, "./host")
	b := startBrokerWith(t, func(c *server.Config) { c.HostBinary = hostBin })
	hc := b.httpClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	status, s := apiCall(t, hc, "POST", b.URL()+"/api/v1/sessions", b.admin.APIKey,
		`{"ticket":{"system":"servicenow","id":"INC-4242","title":"VPN drops every hour"},"permissions":["view","control"]}`, nil)
	if status != 201 {
		t.Fatalf("create: %d %v", status, s)
	}
	code, joinURL := s["code"].(string), s["join_url"].(string)
	if joinURL != b.URL()+"/join/"+code {
		t.Fatalf("join_url %q", joinURL)
	}

	resp, page := get(t, hc, joinURL, linuxUA)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("join page: %d %v", resp.StatusCode, resp.Header)
	}
	grouped := code[:3] + " " + code[3:6] + " " + code[6:]
	for _, want := range []string{"<strong>admin</strong> from Acme IT is ready to help you", "INC-4242", "VPN drops every hour", grouped,
		"see your screen", "use your mouse and keyboard", `href="/join/` + code + `/host"`, "cd ~/Downloads &amp;&amp; chmod +x tether-host-" + code,
		"valid for another 10 minutes",
		// A user on another system learns what the download needs before a loader error tells them.
		`data-testid="join-requirements"`, "Debian 12, Ubuntu 22.04, Fedora 35 or newer"} {
		if !strings.Contains(page, want) {
			t.Errorf("join page lacks %q", want)
		}
	}
	if strings.Contains(page, "clipboard") {
		t.Error("join page lists a permission the technician will not ask for")
	}
	// Written as the code is read out, or with a slash at its end, the
	// link is the same page.
	for _, u := range []string{b.URL() + "/join/" + code[:3] + "-" + code[3:6] + "-" + code[6:], b.URL() + "/join/" + code[:3] + "%20" + code[3:6] + "%20" + code[6:], joinURL + "/"} {
		if resp, page := get(t, hc, u, linuxUA); resp.StatusCode != 200 || !strings.Contains(page, grouped) {
			t.Errorf("join page at %s: %d", u, resp.StatusCode)
		}
	}
	// Asked for files, the page says what the host will ask: any file of
	// the home folder may be fetched, not only "files".
	status, withFiles := apiCall(t, hc, "POST", b.URL()+"/api/v1/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-4243"},"permissions":["view","files"]}`, nil)
	if status != 201 {
		t.Fatalf("create with files: %d %v", status, withFiles)
	}
	if _, page := get(t, hc, withFiles["join_url"].(string), linuxUA); !strings.Contains(page, "fetch any file in your home folder, and send you files (saved in ~/Downloads/Tether)") {
		t.Error("the join page does not say which files a technician may fetch")
	}
	if _, page := get(t, hc, joinURL, "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"); !strings.Contains(page, `data-testid="join-platform"`) {
		t.Error("a Windows visitor is not told the host runs on Linux")
	}

	resp, bin := get(t, hc, joinURL+"/host", linuxUA)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), `filename="tether-host-`+code+`"`) {
		t.Fatalf("download: %d %v", resp.StatusCode, resp.Header)
	}
	path := filepath.Join(t.TempDir(), "tether-host-"+code)
	if err := os.WriteFile(path, []byte(bin), 0o700); err != nil {
		t.Fatal(err)
	}
	settings, err := launch.Read(path)
	if err != nil || settings.Code != code || settings.Broker != b.URL() || !strings.Contains(settings.CAPEM, "BEGIN CERTIFICATE") {
		t.Fatalf("download carries %+v, %v", settings, err)
	}

	// Without -public-addr, the download names the broker as the browser
	// reached it, when the certificate covers that name: localhost would
	// send the host of a user on another computer to itself.
	byIP := strings.Replace(joinURL, "https://localhost:", "https://127.0.0.1:", 1)
	if resp, bin := get(t, hc, byIP+"/host", linuxUA); resp.StatusCode != 200 {
		t.Errorf("download by IP address: %d", resp.StatusCode)
	} else if got := downloadedBroker(t, bin); got != strings.Replace(b.URL(), "localhost", "127.0.0.1", 1) {
		t.Errorf("downloaded from %s, the host connects to %s", byIP, got)
	}
	req, _ := http.NewRequest("GET", joinURL+"/host", nil)
	req.Host = "support.example.com"
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("download by another name: %v", err)
	} else {
		bin, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := downloadedBroker(t, string(bin)); got != b.URL() {
			t.Errorf("downloaded by a name the certificate does not cover, the host connects to %s", got)
		}
	}

	// The user runs it with no argument at all.
	host := runHostBinary(t, path, display, true)
	j, err := b.client(t).Join(ctx, s["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	img, err := j.Screenshot(ctx)
	if err != nil {
		t.Fatalf("screenshot: %v\nhost:\n%s", err, host.stderr.String())
	}
	if got := colourAt(img, 3*w/4, 3*h/4); !near(got, xtest.BottomRight, 40) {
		t.Errorf("bottom-right quadrant is %v, want %v", got, xtest.BottomRight)
	}

	// The code is spent. While its session goes on, the page sends the
	// user back to the window they have open; once it ended, the code is
	// simply used. The download is refused either way.
	if resp, page := get(t, hc, joinURL, linuxUA); resp.StatusCode != 410 || !strings.Contains(page, "going on in the Tether window you started it in") {
		t.Errorf("join page of a code in session: %d", resp.StatusCode)
	}
	if resp, _ := get(t, hc, joinURL+"/host", linuxUA); resp.StatusCode != 410 {
		t.Errorf("download for a code in session: %d", resp.StatusCode)
	}
	if status, out := apiCall(t, hc, "POST", b.URL()+"/api/v1/sessions/"+s["id"].(string)+"/end", b.admin.APIKey, "", nil); status != 200 {
		t.Fatalf("end: %d %v", status, out)
	}
	if resp, page := get(t, hc, joinURL, linuxUA); resp.StatusCode != 410 || !strings.Contains(page, "already used") {
		t.Errorf("join page of a used code: %d", resp.StatusCode)
	}
	if resp, _ := get(t, hc, joinURL+"/host", linuxUA); resp.StatusCode != 410 {
		t.Errorf("download for a used code: %d", resp.StatusCode)
	}
	if resp, page := get(t, hc, b.URL()+"/join/not-a-code", linuxUA); resp.StatusCode != 404 || !strings.Contains(page, "not valid") {
		t.Errorf("join page of junk: %d", resp.StatusCode)
	}

	// Guessing codes from one address hits the limit: 429, Retry-After.
	var limited *http.Response
	for i := range 30 {
		resp, page := get(t, hc, fmt.Sprintf("%s/join/%09d", b.URL(), 100000000+i), linuxUA)
		if resp.StatusCode == 429 {
			limited = resp
			if !strings.Contains(page, "Too many") {
				t.Errorf("429 page: %s", page)
			}
			break
		}
		if resp.StatusCode != 404 {
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		}
	}
	if limited == nil || limited.Header.Get("Retry-After") == "" || limited.Header.Get("Retry-After") == "0" {
		t.Fatalf("30 guesses from one address were not limited with a Retry-After: %v", limited)
	}
}

// TestDownloadedHostGivenMore: a host downloaded from a join page keeps
// the broker and the certificate it carries when the user types the code
// after it anyway, or pastes the link; an address left in the
// environment (TETHER_BROKER) does not send the code elsewhere; and an
// old link opened again does not count as a guess that locks the user out
// of their next one.
func TestDownloadedHostGivenMore(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	hostBin := xtest.Build(t, "./host")
	b := startBrokerWith(t, func(c *server.Config) { c.HostBinary = hostBin })
	hc := b.httpClient(t)
	elsewhere, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer elsewhere.Close()
	var contacted atomic.Bool
	go func() {
		for {
			c, err := elsewhere.Accept()
			if err != nil {
				return
			}
			contacted.Store(true)
			c.Close()
		}
	}()
	t.Setenv("TETHER_BROKER", "https://"+elsewhere.Addr().String())

	// An expired link opened again and again: the next one still opens.
	status, old := apiCall(t, hc, "POST", b.URL()+"/api/v1/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-OLD"}}`, nil)
	if status != 201 {
		t.Fatalf("create: %d %v", status, old)
	}
	b.advance(11 * time.Minute)
	for range 12 {
		if resp, _ := get(t, hc, old["join_url"].(string), linuxUA); resp.StatusCode != 410 {
			t.Fatalf("an expired link: %d", resp.StatusCode)
		}
	}

	for _, arg := range []string{"code", "link"} {
		status, s := apiCall(t, hc, "POST", b.URL()+"/api/v1/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-AGAIN"}}`, nil)
		if status != 201 {
			t.Fatalf("create: %d %v", status, s)
		}
		code, joinURL := s["code"].(string), s["join_url"].(string)
		resp, bin := get(t, hc, joinURL+"/host", linuxUA)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: download: %d", arg, resp.StatusCode)
		}
		path := filepath.Join(t.TempDir(), "tether-host-"+code)
		if err := os.WriteFile(path, []byte(bin), 0o700); err != nil {
			t.Fatal(err)
		}
		// Copied from a chat program: non-breaking spaces between the groups.
		given := code[:3] + "\u00a0" + code[3:6] + "\u00a0" + code[6:]
		if arg == "link" {
			given = joinURL
		}
		host := runHostBinary(t, path, display, true, given)
		waitState(t, b.client(t), s["id"].(string), "active", host)
	}
	if contacted.Load() {
		t.Error("the host contacted the broker named in TETHER_BROKER, not the one it was downloaded from")
	}
}

// TestJoinPageWithoutHostProgram: a broker that has no host program to
// offer says so instead of a broken link, and its steps do not tell the
// user to download what is not there.
func TestJoinPageWithoutHostProgram(t *testing.T) {
	b := startBrokerWith(t, func(c *server.Config) { c.HostBinary = filepath.Join(t.TempDir(), "missing-host") })
	hc := b.httpClient(t)
	_, s := apiCall(t, hc, "POST", b.URL()+"/api/v1/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-1"}}`, nil)
	resp, page := get(t, hc, s["join_url"].(string), linuxUA)
	if resp.StatusCode != 200 || !strings.Contains(page, `data-testid="join-missing"`) || strings.Contains(page, `data-testid="join-download"`) {
		t.Errorf("join page without a host program: %d", resp.StatusCode)
	}
	code := s["code"].(string)
	grouped := code[:3] + " " + code[3:6] + " " + code[6:]
	for _, want := range []string{"Get the Tether host from admin", "Ask admin how to get it, then run it with your code, " + grouped} {
		if !strings.Contains(page, want) {
			t.Errorf("join page without a host program lacks %q", want)
		}
	}
	for _, wrong := range []string{"Download the Tether host", "below", "already filled in", "broker", `data-testid="join-requirements"`} {
		if strings.Contains(page, wrong) {
			t.Errorf("join page without a host program says %q", wrong)
		}
	}
	if resp, page := get(t, hc, s["join_url"].(string)+"/host", linuxUA); resp.StatusCode != 404 || !strings.Contains(page, "does not offer the host program") {
		t.Errorf("download without a host program: %d", resp.StatusCode)
	}
}

// TestOneOfficeJoins: twelve users behind one office address open their
// join links, download the host and connect with it within a minute: none
// of them is turned away, since a right code is no guess. Someone at that
// address trying codes is still stopped after ten wrong ones, and is then
// refused even a right code until the Retry-After, so that a guess cannot
// be told right from wrong.
func TestOneOfficeJoins(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	b := startBrokerWith(t, func(c *server.Config) { c.HostBinary = xtest.Build(t, "./host") })
	hc := b.httpClient(t)
	newSession := func(ticket string) (id, code string) {
		t.Helper()
		status, s := apiCall(t, hc, "POST", b.URL()+"/api/v1/sessions", b.admin.APIKey, `{"ticket":{"id":"`+ticket+`"}}`, nil)
		if status != 201 {
			t.Fatalf("create: %d %v", status, s)
		}
		return s["id"].(string), s["code"].(string)
	}

	const users = 12 // more than the ten attempts an address has in a minute
	ids, codes := make([]string, users), make([]string, users)
	for i := range users {
		ids[i], codes[i] = newSession(fmt.Sprintf("INC-%d", 100+i))
		join := b.URL() + "/join/" + codes[i]
		if resp, page := get(t, hc, join, linuxUA); resp.StatusCode != 200 {
			t.Fatalf("user %d's join page: %d\n%s", i+1, resp.StatusCode, page)
		}
		if resp, _ := get(t, hc, join+"/host", linuxUA); resp.StatusCode != 200 {
			t.Fatalf("user %d's host download: %d", i+1, resp.StatusCode)
		}
	}
	// Each runs the host with their code: the same count, over the WebSocket.
	hosts := make([]*hostProc, users)
	for i := range users {
		hosts[i] = startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), codes[i])
	}
	for i := range users {
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, s := apiCall(t, hc, "GET", b.URL()+"/api/v1/sessions/"+ids[i], b.admin.APIKey, "", nil)
			if s["state"] == "active" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("user %d's host did not join: session %v\n%s", i+1, s["state"], hosts[i].stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Someone at the same address guessing: ten wrong codes, then 429.
	for i := range 10 {
		if resp, _ := get(t, hc, fmt.Sprintf("%s/join/%09d", b.URL(), 300000000+i), linuxUA); resp.StatusCode != 404 {
			t.Fatalf("wrong code %d: %d, want 404", i+1, resp.StatusCode)
		}
	}
	if resp, _ := get(t, hc, b.URL()+"/join/300000010", linuxUA); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the eleventh wrong code in a row: %d, Retry-After %q; want 429 with one", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	_, code := newSession("INC-200")
	if resp, page := get(t, hc, b.URL()+"/join/"+code, linuxUA); resp.StatusCode != 429 || !strings.Contains(page, "Too many") {
		t.Errorf("a right code from an address out of attempts: %d, want the same 429 as a wrong one", resp.StatusCode)
	}
}

// TestCodeFloodSaysWhose: when people at many addresses try codes, every
// user is refused for a minute; a user at an address that tried nothing
// wrong is told the server is flooded, not that their own network tried
// too many codes.
func TestCodeFloodSaysWhose(t *testing.T) {
	b := startBroker(t)
	hc := b.httpClient(t)
	from := func(n int) *http.Client { return clientAt(hc, n) }
	// Eleven addresses, each within its own ten: 110 wrong codes in all.
	for n := 2; n <= 12; n++ {
		c := from(n)
		for i := range 10 {
			if resp, _ := get(t, c, fmt.Sprintf("%s/join/%09d", b.URL(), 400000000+100*n+i), linuxUA); resp.StatusCode != 404 && resp.StatusCode != 429 {
				t.Fatalf("wrong code from 127.0.0.%d: %d", n, resp.StatusCode)
			}
		}
	}
	status, s := apiCall(t, hc, "POST", b.URL()+"/api/v1/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-1"}}`, nil)
	if status != 201 {
		t.Fatalf("create: %d %v", status, s)
	}
	resp, page := get(t, from(20), b.URL()+"/join/"+s["code"].(string), linuxUA)
	if resp.StatusCode != 429 || !strings.Contains(page, "The support server is receiving too many support codes right now") || strings.Contains(page, "your network") {
		t.Errorf("a user at an address that tried nothing: %d\n%s", resp.StatusCode, page)
	}
	if resp, page := get(t, from(2), fmt.Sprintf("%s/join/%09d", b.URL(), 499999999), linuxUA); resp.StatusCode != 429 || !strings.Contains(page, "from your network") {
		t.Errorf("an address that used up its own tries: %d\n%s", resp.StatusCode, page)
	}
}

// clientAt is hc sending from the address 127.0.0.n.
func clientAt(hc *http.Client, n int) *http.Client {
	tr := hc.Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}}).DialContext
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// TestCodeFloodFromOneAddress: one address sends 150 wrong codes in a
// row. It is refused after ten, and everyone else goes on: a user at
// another address opens their join page.
func TestCodeFloodFromOneAddress(t *testing.T) {
	b := startBroker(t)
	hc := b.httpClient(t)
	flood := clientAt(hc, 2)
	// More than the 100 a minute all sources together may try.
	for i := range 150 {
		resp, page := get(t, flood, fmt.Sprintf("%s/join/%09d", b.URL(), 500000000+i), linuxUA)
		switch {
		case i < 10 && resp.StatusCode != 404:
			t.Fatalf("wrong code %d from the flooding address: %d, want 404", i+1, resp.StatusCode)
		case resp.StatusCode == 429 && !strings.Contains(page, "from your network"):
			t.Fatalf("wrong code %d from the flooding address is not told it is its own network's fault:\n%s", i+1, page)
		case resp.StatusCode != 404 && resp.StatusCode != 429: // a 404 when a try came back (one each 6 s)
			t.Fatalf("wrong code %d from the flooding address: %d", i+1, resp.StatusCode)
		}
	}
	status, s := apiCall(t, hc, "POST", b.URL()+"/api/v1/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-1"}}`, nil)
	if status != 201 {
		t.Fatalf("create: %d %v", status, s)
	}
	if resp, page := get(t, clientAt(hc, 3), b.URL()+"/join/"+s["code"].(string), linuxUA); resp.StatusCode != 200 {
		t.Errorf("a user at another address opening their join page: %d\n%s", resp.StatusCode, page)
	}
}

// TestCodeFloodAuditedOnce: an address sending wrong codes in a flood
// leaves the admin one refused attempt a minute to read, beside the ten
// it was allowed to try; not one row for every request, which would grow
// the database without bound.
func TestCodeFloodAuditedOnce(t *testing.T) {
	b := startBroker(t)
	hc := b.httpClient(t)
	flood := clientAt(hc, 2)
	guess := 0
	burst := func(n int) {
		t.Helper()
		for range n {
			guess++
			if resp, _ := get(t, flood, fmt.Sprintf("%s/join/%09d", b.URL(), 600000000+guess), linuxUA); resp.StatusCode != 404 && resp.StatusCode != 429 {
				t.Fatalf("wrong code %d: %d", guess, resp.StatusCode)
			}
		}
	}
	audited := func() map[string]int {
		t.Helper()
		status, audit := apiCall(t, hc, "GET", b.URL()+"/api/v1/audit/codes", b.admin.APIKey, "", nil)
		if status != 200 {
			t.Fatalf("audit: %d %v", status, audit)
		}
		counts := map[string]int{}
		for _, a := range audit["attempts"].([]any) {
			if e := a.(map[string]any); e["source"] == "127.0.0.2" {
				counts[e["outcome"].(string)]++
			}
		}
		return counts
	}
	burst(40)
	if got := audited(); got["unknown"] != 10 || got["rate_limited"] != 1 {
		t.Errorf("after 40 wrong codes, audited %v; want 10 unknown and 1 rate_limited", got)
	}
	// A minute later the address has ten tries again, and then a refusal.
	b.advance(time.Minute)
	burst(40)
	if got := audited(); got["unknown"] != 20 || got["rate_limited"] != 2 {
		t.Errorf("after 40 more a minute later, audited %v; want 20 unknown and 2 rate_limited", got)
	}
}
