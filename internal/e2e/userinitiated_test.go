package e2e

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// loginToken logs user in through the API and returns the bearer token.
func (b *broker) loginToken(t *testing.T, user, password string) string {
	t.Helper()
	u, _ := dial.BrokerURL(b.URL())
	c, err := client.New(client.Config{Broker: u, CAFile: b.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Login(context.Background(), user, password, "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (b *broker) httpClient(t *testing.T) *http.Client {
	t.Helper()
	tlsCfg, err := dial.TLSConfig(b.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 30 * time.Second}
}

var shownCode = regexp.MustCompile(`Your support code: (\d{3}) (\d{3}) (\d{3})`)

// TestUserInitiatedSession: the user starts the host without a code, the
// broker issues one that the host shows, the technician claims it for a
// ticket in the API the console uses, connects and sees the screen. The
// ticket system hears of the session, without a code expiry: the code is
// used.
func TestUserInitiatedSession(t *testing.T) {
	const w, h = 1024, 768
	display := xtest.StartXvfb(t, w, h)
	xtest.StartPattern(t, display)
	b, _ := webhookBroker(t)
	ts := newTicketSystem(t)
	register(t, b, b.httpClient(t), ts)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := b.CreateUser(ctx, "tina", "tina-password-1", "technician"); err != nil {
		t.Fatal(err)
	}
	tok := b.loginToken(t, "tina", "tina-password-1")
	hc := b.httpClient(t)
	api := b.URL() + "/api/v1"

	host := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile())
	out := host.waitOutput(t, "Your support code: ", 1, 20*time.Second)
	m := shownCode.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("host shows no code:\n%s", out)
	}
	code := m[1] + m[2] + m[3]
	if !strings.Contains(out, "Read it out to your technician") {
		t.Errorf("host does not tell the user what to do with the code:\n%s", out)
	}

	// A ticket is required, field by field.
	status, resp := apiCall(t, hc, "POST", api+"/sessions/claim", tok, `{"code":"`+code+`"}`, nil)
	if status != 400 || errCode(resp) != "ticket_required" {
		t.Fatalf("claim without a ticket: %d %v", status, resp)
	}
	status, resp = apiCall(t, hc, "POST", api+"/sessions/claim", tok, `{"code":"12","ticket":{"id":"INC-9","url":"ftp://x"}}`, nil)
	fields, _ := resp["error"].(map[string]any)["fields"].([]any)
	if status != 400 || errCode(resp) != "invalid_request" || len(fields) != 2 {
		t.Fatalf("claim with a bad code and ticket URL: %d %v", status, resp)
	}
	// A code issued for a technician's session is no way in for another
	// technician: it is refused like an unknown one.
	status, resp = apiCall(t, hc, "POST", api+"/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-1"}}`, nil)
	if status != 201 {
		t.Fatalf("create: %d %v", status, resp)
	}
	status, resp = apiCall(t, hc, "POST", api+"/sessions/claim", tok, `{"code":"`+resp["code"].(string)+`","ticket":{"id":"INC-9"}}`, nil)
	if status != 404 || errCode(resp) != "code_not_found" {
		t.Fatalf("claiming a technician's code: %d %v", status, resp)
	}

	status, resp = apiCall(t, hc, "POST", api+"/sessions/claim", tok,
		`{"code":"`+m[1]+" "+m[2]+" "+m[3]+`","ticket":{"system":"jira","id":"HELP-77","url":"https://jira.example.com/browse/HELP-77","title":"Printer offline"}}`, nil)
	if status != 201 {
		t.Fatalf("claim: %d %v", status, resp)
	}
	id := resp["id"].(string)
	ticket, _ := resp["ticket"].(map[string]any)
	if resp["initiated_by"] != "user" || resp["technician"] != "tina" || ticket["id"] != "HELP-77" || ticket["title"] != "Printer offline" {
		t.Errorf("claimed session: %v", resp)
	}
	if _, ok := resp["code"]; ok {
		t.Errorf("the claimed session repeats the code: %v", resp)
	}
	// The user's computer is connected already: the answer, and the API
	// right after it, say the session is live with that computer in it,
	// not that it waits for one with a code still to run out.
	if resp["state"] != "active" || resp["host"] == nil || resp["code_expires_at"] != nil {
		t.Errorf("the claim answers state %v, host %v, code_expires_at %v; want active, the user's computer, no code expiry",
			resp["state"], resp["host"], resp["code_expires_at"])
	}
	if _, got := apiCall(t, hc, "GET", api+"/sessions/"+id, tok, "", nil); got["state"] != "active" || got["host"] == nil {
		t.Errorf("right after the claim the session is %v with host %v, want active with the user's computer", got["state"], got["host"])
	}
	created := ts.wait(t, id, "session.created")["session.created"].Data
	if _, ok := created["code_expires_at"]; ok || created["initiated_by"] != "user" || created["ticket_id"] != "HELP-77" {
		t.Errorf("session.created of the claimed session: %v; want initiated_by user and no code_expires_at", created)
	}
	// Each code works once.
	if status, resp := apiCall(t, hc, "POST", api+"/sessions/claim", tok, `{"code":"`+code+`","ticket":{"id":"HELP-77"}}`, nil); status != 404 {
		t.Errorf("second claim: %d %v", status, resp)
	}

	u, _ := dial.BrokerURL(b.URL())
	tc, err := client.New(client.Config{Broker: u, CAFile: b.CAFile(), Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	j, err := tc.Join(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	img, err := j.Screenshot(ctx)
	if err != nil {
		t.Fatalf("screenshot: %v\nhost:\n%s\n%s", err, host.stdout.String(), host.stderr.String())
	}
	if got := colourAt(img, w/4, h/4); !near(got, xtest.TopLeft, 40) {
		t.Errorf("top-left quadrant is %v, want %v", got, xtest.TopLeft)
	}
	if !strings.Contains(host.stdout.String(), "tina") || !strings.Contains(host.stdout.String(), "HELP-77") {
		t.Errorf("the user was not told who asks and for which ticket:\n%s", host.stdout.String())
	}

	// Attempts are audited, without the code.
	_, audit := apiCall(t, hc, "GET", api+"/audit/codes", b.admin.APIKey, "", nil)
	var outcomes []string
	for _, a := range audit["attempts"].([]any) {
		e := a.(map[string]any)
		outcomes = append(outcomes, e["via"].(string)+":"+e["outcome"].(string))
	}
	for _, want := range []string{"host:issued", "console:ok", "console:unknown"} {
		if !strings.Contains(strings.Join(outcomes, " "), want) {
			t.Errorf("code audit lacks %s: %v", want, outcomes)
		}
	}
	if strings.Contains(strings.Join(outcomes, " "), code) {
		t.Error("the code itself is in the audit")
	}

	if err := tc.EndSession(ctx, id); err != nil {
		t.Fatal(err)
	}
	if code := host.wait(t, 20*time.Second); code != 0 {
		t.Errorf("host exit code %d", code)
	}
}

// TestUserInitiatedCodeEnds: a code nobody claims expires, and the host
// says so, as a normal end of the wait; a host that leaves takes its code
// with it.
func TestUserInitiatedCodeEnds(t *testing.T) {
	// Mostly waiting for a code to expire: it runs beside the other tests
	// that wait.
	t.Parallel()
	display := xtest.StartXvfb(t, 640, 480)
	b := startBrokerWith(t, func(c *server.Config) { c.CodeTTL = 3 * time.Second })
	hc := b.httpClient(t)
	claim := func(m []string) (int, map[string]any) {
		return apiCall(t, hc, "POST", b.URL()+"/api/v1/sessions/claim", b.admin.APIKey, `{"code":"`+m[1]+m[2]+m[3]+`","ticket":{"id":"INC-5"}}`, nil)
	}

	host := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile())
	m := shownCode.FindStringSubmatch(host.waitOutput(t, "Your support code: ", 1, 20*time.Second))
	if m == nil {
		t.Fatal("no code shown")
	}
	// An expired wait is a normal end, as the user's own "end" is: exit 0,
	// and the terminal says what happened and how to get a new code.
	if code := host.wait(t, 20*time.Second); code != 0 {
		t.Errorf("host exit code %d after the code expired, want 0; stderr:\n%s", code, host.stderr.String())
	}
	if out := host.stdout.String(); !regexp.MustCompile(`Session ended: No technician connected: your support code expired at \d\d:\d\d unused, so nothing was shared\. ` +
		`To get a new code, start the host again and read the new code out to your technician\.`).MatchString(out) {
		t.Errorf("host does not say plainly that the code expired:\n%s", out)
	}
	if strings.Contains(host.stderr.String(), "Tether: ") {
		t.Errorf("host reports the expired wait as an error:\n%s", host.stderr.String())
	}
	if status, resp := claim(m); status != 404 || errCode(resp) != "code_not_found" {
		t.Errorf("claiming an expired code: %d %v", status, resp)
	}

	b = startBroker(t)
	hc = b.httpClient(t)
	host = startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile())
	m = shownCode.FindStringSubmatch(host.waitOutput(t, "Your support code: ", 1, 20*time.Second))
	if m == nil {
		t.Fatal("no code shown")
	}
	host.cmd.Process.Signal(syscall.SIGINT) // the user presses Ctrl+C
	host.wait(t, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, resp := claim(m)
		if status == 404 && errCode(resp) == "code_not_found" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("claiming the code of a host that left: %d %v", status, resp)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCommandsWhileWaiting: what the user types while the host waits for
// a technician is answered at once, never kept and replayed when one
// connects; "end" stops waiting, and the code can no longer be claimed.
func TestCommandsWhileWaiting(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	b := startBroker(t)
	host := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile())
	m := shownCode.FindStringSubmatch(host.waitOutput(t, "Your support code: ", 1, 20*time.Second))
	if m == nil {
		t.Fatal("no code shown")
	}
	host.typeLine(t, "status")
	host.waitOutput(t, "Waiting for your technician to connect. Nothing is shared.", 1, 5*time.Second)
	host.typeLine(t, "pause")
	host.waitOutput(t, "Nothing to pause: no technician has connected yet, so nothing is shared.", 1, 5*time.Second)
	host.typeLine(t, "end")
	if code := host.wait(t, 10*time.Second); code != 0 {
		t.Errorf("host exit code %d after the user ended the wait; stderr:\n%s", code, host.stderr.String())
	}
	if out := host.stdout.String(); !strings.Contains(out, "You stopped waiting for your technician. Your code can no longer be used.") {
		t.Errorf("the host does not say the wait ended:\n%s", out)
	}
	status, resp := apiCall(t, b.httpClient(t), "POST", b.URL()+"/api/v1/sessions/claim", b.admin.APIKey,
		`{"code":"`+m[1]+m[2]+m[3]+`","ticket":{"id":"INC-6"}}`, nil)
	if status != 404 || errCode(resp) != "code_not_found" {
		t.Errorf("claiming the code after the user ended the wait: %d %v", status, resp)
	}
}

// TestWaitingCodeTypedIntoSecondHost: the user types the code their host
// shows into a second host, as if it were a technician's: it says the code
// belongs to the host waiting in the other window, not that it is wrong,
// and that host still waits and can be claimed.
func TestWaitingCodeTypedIntoSecondHost(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	b := startBroker(t)
	first := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile())
	m := shownCode.FindStringSubmatch(first.waitOutput(t, "Your support code: ", 1, 20*time.Second))
	if m == nil {
		t.Fatal("no code shown")
	}
	second := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), m[1], m[2], m[3])
	if code := second.wait(t, 20*time.Second); code == 0 {
		t.Fatalf("the second host exit code 0; stderr:\n%s", second.stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(second.stderr.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "Could not join the support session. This support code belongs to the host that is waiting for your technician in another window or on another computer.") {
		t.Errorf("the second host says:\n%s", second.stderr.String())
	}
	status, resp := apiCall(t, b.httpClient(t), "POST", b.URL()+"/api/v1/sessions/claim", b.admin.APIKey,
		`{"code":"`+m[1]+m[2]+m[3]+`","ticket":{"id":"INC-8"}}`, nil)
	if status != 201 || resp["state"] != "active" {
		t.Fatalf("claiming the first host's code: %d %v", status, resp)
	}
}

// TestClaimRateLimit: a technician guessing codes is slowed down with a
// clear 429 and Retry-After, and every attempt is audited.
func TestClaimRateLimit(t *testing.T) {
	b := startBroker(t)
	if err := b.CreateUser(context.Background(), "tina", "tina-password-1", "technician"); err != nil {
		t.Fatal(err)
	}
	tok := b.loginToken(t, "tina", "tina-password-1")
	hc := newSpecChecker(t, b).client()
	api := b.URL() + "/api/v1"
	limited := false
	for i := range 30 {
		req, _ := http.NewRequest("POST", api+"/sessions/claim", strings.NewReader(fmt.Sprintf(`{"code":"%09d","ticket":{"id":"INC-1"}}`, 200000000+i)))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 429 {
			if n, _ := strconv.Atoi(resp.Header.Get("Retry-After")); n < 1 {
				t.Errorf("429 without a usable Retry-After: %q", resp.Header.Get("Retry-After"))
			}
			if i < 5 {
				t.Errorf("limited after only %d guesses", i)
			}
			limited = true
			break
		}
		if resp.StatusCode != 404 {
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		}
	}
	if !limited {
		t.Fatal("30 guesses were not limited")
	}
	_, audit := apiCall(t, hc, "GET", api+"/audit/codes", b.admin.APIKey, "", nil)
	counts := map[string]int{}
	for _, a := range audit["attempts"].([]any) {
		e := a.(map[string]any)
		if e["actor"] == "tina" {
			counts[e["outcome"].(string)]++
		}
	}
	if counts["unknown"] < 5 || counts["rate_limited"] != 1 {
		t.Errorf("audited attempts: %v", counts)
	}
}
