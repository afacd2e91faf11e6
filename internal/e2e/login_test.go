package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
)

// TestLoginSecurity: a browser's login cookie, CSRF token and origin
// checks; lockout with Retry-After; idle logins ending.
func TestLoginSecurity(t *testing.T) {
	b := startBroker(t)
	ctx := context.Background()
	if err := b.CreateUser(ctx, "tina", "tina-password-1", "technician"); err != nil {
		t.Fatal(err)
	}
	sc := newSpecChecker(t, b)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: sc, Jar: jar}
	api := b.URL() + "/api/v1"
	origin := map[string]string{"Origin": b.URL()}
	evil := map[string]string{"Origin": "https://evil.example"}

	// Another site cannot even log a browser in (login CSRF).
	if status, out := apiCall(t, browser, "POST", api+"/login", "", `{"username":"tina","password":"tina-password-1"}`, evil); status != 403 || errCode(out) != "origin_refused" {
		t.Errorf("cross-site login: %d %v", status, out)
	}
	req, _ := http.NewRequest("POST", api+"/login", strings.NewReader(`{"username":"tina","password":"tina-password-1"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", b.URL())
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == auth.CookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login cookie %+v is not HttpOnly, Secure and SameSite=Strict", cookie)
	}
	_, me := apiCall(t, browser, "GET", api+"/me", "", "", nil)
	csrf := me["csrf_token"].(string)

	withCSRF := map[string]string{"X-CSRF-Token": csrf, "Origin": b.URL()}
	for _, c := range []struct {
		name   string
		header map[string]string
		status int
		code   string
	}{
		{"no CSRF token", origin, 403, "csrf_failed"},
		{"forged CSRF token", map[string]string{"X-CSRF-Token": "forged", "Origin": b.URL()}, 403, "csrf_failed"},
		{"right token, other site", map[string]string{"X-CSRF-Token": csrf, "Origin": "https://evil.example"}, 403, "origin_refused"},
		{"right token, http origin", map[string]string{"X-CSRF-Token": csrf, "Origin": strings.Replace(b.URL(), "https", "http", 1)}, 403, "origin_refused"},
		{"right token, same origin", withCSRF, 201, ""},
	} {
		status, out := apiCall(t, browser, "POST", api+"/sessions", "", `{}`, c.header)
		if status != c.status || c.code != "" && errCode(out) != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, status, out, c.status, c.code)
		}
	}
	// The viewer socket refuses the cookie from another site's page.
	u, _ := dial.BrokerURL(b.URL())
	tlsCfg, _ := dial.TLSConfig(b.CAFile())
	cookieHeader := http.Header{"Cookie": {auth.CookieName + "=" + cookie.Value}, "Origin": {"https://evil.example"}}
	if _, err := dial.WebSocket(ctx, u, "/ws/viewer", tlsCfg, cookieHeader); err == nil {
		t.Error("viewer socket accepted the login cookie from another origin")
	}

	// Idle for longer than the idle timeout: the login is over.
	b.advance(31 * time.Minute)
	if status, _ := apiCall(t, browser, "GET", api+"/me", "", "", nil); status != 401 {
		t.Errorf("idle login still works: %d", status)
	}

	// Five wrong passwords lock the account, with Retry-After; the right
	// password waits too; then it works again.
	for i := range 5 {
		if status, _ := apiCall(t, browser, "POST", api+"/login", "", `{"username":"tina","password":"wrong-`+strconv.Itoa(i)+`"}`, nil); status != 401 {
			t.Fatalf("wrong password %d: %d", i, status)
		}
	}
	req, _ = http.NewRequest("POST", api+"/login", strings.NewReader(`{"username":"tina","password":"tina-password-1"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err = browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 429 || retry < 1 {
		t.Fatalf("locked account: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	b.advance(time.Duration(retry) * time.Second)
	if status, out := apiCall(t, browser, "POST", api+"/login", "", `{"username":"tina","password":"tina-password-1"}`, nil); status != 200 {
		t.Errorf("after the lockout: %d %v", status, out)
	}
}

// TestBrowserLoginKeepsItsTokenFromScripts: a browser's sign-in (it sends
// Origin) gets its login in the HttpOnly cookie only; the answer, which
// the page's scripts read, holds no bearer token that anything injected
// into the page could carry away. A program's sign-in (no Origin, as the
// viewer CLI's) still gets the token it needs.
func TestBrowserLoginKeepsItsTokenFromScripts(t *testing.T) {
	b := startBroker(t)
	if err := b.CreateUser(context.Background(), "tina", "tina-password-1", "technician"); err != nil {
		t.Fatal(err)
	}
	sc := newSpecChecker(t, b)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: sc, Jar: jar}
	api := b.URL() + "/api/v1"
	status, out := apiCall(t, browser, "POST", api+"/login", "", `{"username":"tina","password":"tina-password-1"}`, map[string]string{"Origin": b.URL()})
	if status != 200 {
		t.Fatalf("browser login: %d %v", status, out)
	}
	if tok, ok := out["token"]; ok {
		t.Errorf("a browser's sign-in answer holds the login's bearer token %v, readable by the page's scripts", tok)
	}
	if out["csrf_token"] == "" {
		t.Errorf("a browser's sign-in answer has no CSRF token: %v", out)
	}
	if status, out := apiCall(t, browser, "GET", api+"/me", "", "", nil); status != 200 {
		t.Errorf("the browser's cookie does not sign it in: %d %v", status, out)
	}

	program := sc.client()
	status, out = apiCall(t, program, "POST", api+"/login", "", `{"username":"tina","password":"tina-password-1"}`, nil)
	tok, _ := out["token"].(string)
	if status != 200 || tok == "" {
		t.Fatalf("a program's login: %d %v, want 200 with a token", status, out)
	}
	if status, out := apiCall(t, program, "GET", api+"/me", tok, "", nil); status != 200 {
		t.Errorf("the program's token: %d %v", status, out)
	}
}

// TestTwoFactorCannotBeGuessedFromManyAddresses: someone who knows tina's
// password but not her authenticator tries codes from many addresses, a
// few from each, below each address's lockout. After ten wrong codes in
// all, tina's codes are refused from every address, the right one too,
// for a while; then the right code signs her in.
func TestTwoFactorCannotBeGuessedFromManyAddresses(t *testing.T) {
	b := startBroker(t)
	if err := b.CreateUser(context.Background(), "tina", "tina-password-1", "technician"); err != nil {
		t.Fatal(err)
	}
	hc := newSpecChecker(t, b).client()
	api := b.URL() + "/api/v1"
	tok := b.loginToken(t, "tina", "tina-password-1")
	_, enrol := apiCall(t, hc, "POST", api+"/me/totp", tok, `{"password":"tina-password-1"}`, nil)
	secret, _ := enrol["secret"].(string)
	code, _ := auth.TOTPCode(secret, b.now())
	if status, out := apiCall(t, hc, "POST", api+"/me/totp/confirm", tok, `{"code":"`+code+`"}`, nil); status != 200 {
		t.Fatalf("confirm: %d %v", status, out)
	}
	signIn := func(from, code string) (int, map[string]any) {
		return apiCall(t, clientFrom(t, b, from), "POST", api+"/login", "", `{"username":"tina","password":"tina-password-1","totp":"`+code+`"}`, nil)
	}
	wrong := 0
	for a := 2; a <= 6; a++ {
		for range 2 {
			wrong++
			if status, out := signIn("127.0.0."+strconv.Itoa(a), fmt.Sprintf("%06d", 100000+wrong)); status != 401 || errCode(out) != "bad_totp" {
				t.Fatalf("wrong code %d from 127.0.0.%d: %d %v", wrong, a, status, out)
			}
		}
	}
	code, _ = auth.TOTPCode(secret, b.now().Add(30*time.Second)) // the next one: the enrolment's is used
	if status, out := signIn("127.0.0.9", code); status != 429 || errCode(out) != "locked_out" {
		t.Errorf("after %d wrong codes from five addresses, the right code from a sixth: %d %v, want 429 locked_out", wrong, status, out)
	}
	b.advance(5 * time.Minute)
	code, _ = auth.TOTPCode(secret, b.now())
	if status, out := signIn("127.0.0.9", code); status != 200 {
		t.Errorf("after the wait, the right code: %d %v", status, out)
	}
}

// TestTOTPRequiredByRole: the admin requires two-factor authentication for
// technicians; a technician without it may only enrol; then logins need
// the current code, once.
func TestTOTPRequiredByRole(t *testing.T) {
	b := startBroker(t)
	ctx := context.Background()
	b.CreateUser(ctx, "tina", "tina-password-1", "technician")
	hc := newSpecChecker(t, b).client()
	api := b.URL() + "/api/v1"
	earlier := b.loginToken(t, "tina", "tina-password-1")
	if status, out := apiCall(t, hc, "PUT", api+"/settings", b.admin.APIKey, `{"totp_required_roles":["technician"]}`, nil); status != 200 {
		t.Fatalf("settings: %d %v", status, out)
	}
	// The policy applies at once, to logins already open too.
	if status, out := apiCall(t, hc, "GET", api+"/sessions", earlier, "", nil); status != 403 || errCode(out) != "totp_enrolment_required" {
		t.Errorf("a login from before the policy: %d %v", status, out)
	}
	login := func(totp string) (int, map[string]any) {
		return apiCall(t, hc, "POST", api+"/login", "", `{"username":"tina","password":"tina-password-1","totp":"`+totp+`"}`, nil)
	}
	status, out := login("")
	if status != 200 || out["must_enrol_totp"] != true {
		t.Fatalf("login before enrolment: %d %v", status, out)
	}
	tok := out["token"].(string)
	if status, out := apiCall(t, hc, "POST", api+"/sessions", tok, `{}`, nil); status != 403 || errCode(out) != "totp_enrolment_required" {
		t.Errorf("work before enrolment: %d %v", status, out)
	}
	if _, err := b.loginViewerSocket(tok); err == nil {
		t.Error("viewer socket open before enrolment")
	}
	_, enrol := apiCall(t, hc, "POST", api+"/me/totp", tok, `{"password":"tina-password-1"}`, nil)
	secret, uri := enrol["secret"].(string), enrol["otpauth_uri"].(string)
	if !strings.HasPrefix(uri, "otpauth://totp/Tether:tina?") {
		t.Errorf("otpauth URI %q", uri)
	}
	code, _ := auth.TOTPCode(secret, b.now())
	if status, out := apiCall(t, hc, "POST", api+"/me/totp/confirm", tok, `{"code":"`+code+`"}`, nil); status != 200 {
		t.Fatalf("confirm: %d %v", status, out)
	}
	if status, _ := apiCall(t, hc, "POST", api+"/sessions", tok, `{}`, nil); status != 201 {
		t.Errorf("work after enrolment: %d", status)
	}
	if status, out := login(""); status != 401 || errCode(out) != "totp_required" {
		t.Errorf("login without the code: %d %v", status, out)
	}
	if status, out := login(code); status != 401 || errCode(out) != "bad_totp" {
		t.Errorf("login with a used code: %d %v", status, out)
	}
	b.advance(30 * time.Second)
	code, _ = auth.TOTPCode(secret, b.now())
	if status, out := login(code); status != 200 || out["must_enrol_totp"] != false || out["user"].(map[string]any)["totp_enabled"] != true {
		t.Errorf("login with the code: %d %v", status, out)
	}
	b.advance(30 * time.Second)
	code, _ = auth.TOTPCode(secret, b.now())
	if status, out := apiCall(t, hc, "DELETE", api+"/me/totp", tok, `{"password":"tina-password-1","code":"`+code+`"}`, nil); status != 409 || errCode(out) != "totp_required_by_role" {
		t.Errorf("turning off required TOTP: %d %v", status, out)
	}
	// Lost phone: the admin resets the account; the new password logs in
	// to enrolment again.
	_, reset := apiCall(t, hc, "POST", api+"/users/tina/reset", b.admin.APIKey, "", nil)
	if status, _ := apiCall(t, hc, "GET", api+"/me", tok, "", nil); status != 401 {
		t.Errorf("login survives a reset: %d", status)
	}
	status, out = apiCall(t, hc, "POST", api+"/login", "", `{"username":"tina","password":"`+reset["password"].(string)+`"}`, nil)
	if status != 200 || out["must_enrol_totp"] != true {
		t.Errorf("login after reset: %d %v", status, out)
	}
}

// loginViewerSocket opens the viewer socket with a bearer token.
func (b *broker) loginViewerSocket(token string) (*websocket.Conn, error) {
	u, _ := dial.BrokerURL(b.URL())
	tlsCfg, _ := dial.TLSConfig(b.CAFile())
	return dial.WebSocket(context.Background(), u, "/ws/viewer", tlsCfg, http.Header{"Authorization": {"Bearer " + token}})
}

// TestLoginRateLimitPerSource: guessing across many accounts from one
// address is slowed down, with Retry-After, even though no single account
// reaches its lockout.
func TestLoginRateLimitPerSource(t *testing.T) {
	b := startBroker(t)
	hc := newSpecChecker(t, b).client()
	api := b.URL() + "/api/v1"
	for i := range 40 {
		req, _ := http.NewRequest("POST", api+"/login", strings.NewReader(`{"username":"user`+strconv.Itoa(i)+`","password":"Winter2026!"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 429 {
			if i < 10 {
				t.Errorf("limited after %d attempts", i)
			}
			if n, _ := strconv.Atoi(resp.Header.Get("Retry-After")); n < 1 {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
			return
		}
		if resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %d", i, resp.StatusCode)
		}
	}
	t.Fatal("40 sign-in attempts from one address were not limited")
}

// TestSignInBurstKeepsMemory: each password check (argon2id) takes
// 19 MiB while it runs. Sign-in attempts sent at once from a few
// addresses, each within its limit (20 at once), by someone who holds no
// account, must not take the broker's memory up by hundreds of MiB for
// each address: more addresses would have the system kill it. The
// attempts are still each answered. The broker is told it stands behind a
// reverse proxy, so that the test's requests come from several addresses.
func TestSignInBurstKeepsMemory(t *testing.T) {
	cmd, url, caFile, _ := brokerProc(t, "-trusted-proxy", "127.0.0.1")
	tlsCfg, err := dial.TLSConfig(caFile)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: time.Minute}
	time.Sleep(time.Second) // let the broker settle before reading its memory
	before := peakRSSMB(t, cmd.Process.Pid)
	const addresses, perAddress = 3, 20
	const burst = addresses * perAddress
	statuses := make(chan int, burst)
	for i := range burst {
		go func() {
			req, _ := http.NewRequest("POST", url+"/api/v1/login",
				strings.NewReader(`{"username":"guess`+strconv.Itoa(i)+`","password":"Winter2026!"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", "198.51.100."+strconv.Itoa(1+i%addresses))
			resp, err := hc.Do(req)
			if err != nil {
				t.Error(err)
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	for range burst {
		if status := <-statuses; status != 401 {
			t.Errorf("a wrong sign-in: %d, want 401", status)
		}
	}
	after := peakRSSMB(t, cmd.Process.Pid)
	t.Logf("broker's peak memory: %.0f MiB before the burst, %.0f MiB after", before, after)
	if after-before > 300 {
		t.Errorf("%d sign-in attempts at once took the broker's memory from %.0f MiB up to %.0f MiB", burst, before, after)
	}
}

// browserLogin signs user in as the console does, with a cookie jar, and
// returns the browser, its login cookie and its CSRF token.
func (b *broker) browserLogin(t *testing.T, hc *http.Client, user, password string) (*http.Client, string, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: hc.Transport, Jar: jar}
	status, out := apiCall(t, browser, "POST", b.URL()+"/api/v1/login", "", `{"username":"`+user+`","password":"`+password+`"}`, map[string]string{"Origin": b.URL()})
	if status != 200 {
		t.Fatalf("browser login: %d %v", status, out)
	}
	u, _ := url.Parse(b.URL())
	for _, c := range jar.Cookies(u) {
		if c.Name == auth.CookieName {
			return browser, c.Value, out["csrf_token"].(string)
		}
	}
	t.Fatal("no login cookie")
	return nil, "", ""
}

// watch opens the viewer socket with header (a bearer token, or a login
// cookie with the console's origin) and joins session id.
func (b *broker) watch(t *testing.T, header http.Header, id string) *websocket.Conn {
	t.Helper()
	u, _ := dial.BrokerURL(b.URL())
	tlsCfg, _ := dial.TLSConfig(b.CAFile())
	ws, err := dial.WebSocket(context.Background(), u, "/ws/viewer", tlsCfg, header)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	hello, _ := protocol.Encode(protocol.TypeHello, id, protocol.Hello{Version: protocol.Version, Role: protocol.RoleViewer, Session: id})
	ws.WriteMessage(websocket.TextMessage, hello)
	readType(t, ws, protocol.TypeWelcome)
	return ws
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// endedWith waits for the broker to end ws's connection and checks what
// it said.
func endedWith(t *testing.T, what string, ws *websocket.Conn, want string) {
	t.Helper()
	var ended protocol.Ended
	protocol.DecodePayload(readType(t, ws, protocol.TypeEnded), &ended)
	if ended.Reason != want {
		t.Errorf("%s ended with %q, want %q", what, ended.Reason, want)
	}
}

// stillOpen checks that the broker still serves ws's connection: a
// malformed message is answered with an error, as on any live connection,
// and nothing ends it first.
func stillOpen(t *testing.T, what string, ws *websocket.Conn) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("not a message")); err != nil {
		t.Errorf("%s was closed: %v", what, err)
		return
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Errorf("%s was closed: %v", what, err)
			return
		}
		switch env, _ := protocol.Decode(data); env.Type {
		case protocol.TypeError:
			return
		case protocol.TypeEnded:
			t.Errorf("%s was ended: %s", what, data)
			return
		}
	}
}

// tinasSession starts a broker with a technician, tina (password
// "tina-password-1"), and a session of hers; it returns the broker, an
// API client checked against the OpenAPI document, the API's base URL and
// the session's id.
func tinasSession(t *testing.T) (b *broker, hc *http.Client, api, id string) {
	t.Helper()
	b = startBroker(t)
	if err := b.CreateUser(context.Background(), "tina", "tina-password-1", "technician"); err != nil {
		t.Fatal(err)
	}
	hc = newSpecChecker(t, b).client()
	api = b.URL() + "/api/v1"
	status, out := apiCall(t, hc, "POST", api+"/sessions", b.admin.APIKey, `{"technician":"tina"}`, nil)
	if status != 201 {
		t.Fatalf("create: %d %v", status, out)
	}
	return b, hc, api, out["id"].(string)
}

// TestPasswordChangeEndsOtherLogins: whoever changes their password ends
// every other login of the account (another browser's, a `viewer login`
// token) and the live connections made with them, at once; the login
// that changed it and the account's API keys go on.
func TestPasswordChangeEndsOtherLogins(t *testing.T) {
	b, hc, api, id := tinasSession(t)
	_, key := apiCall(t, hc, "POST", api+"/keys", b.admin.APIKey, `{"name":"tina's script","username":"tina","scopes":["sessions:read","sessions:join"]}`, nil)
	keyToken := key["key"].(string)

	browser, cookie, _ := b.browserLogin(t, hc, "tina", "tina-password-1")
	cli := b.loginToken(t, "tina", "tina-password-1")  // `viewer login` on another computer
	here := b.loginToken(t, "tina", "tina-password-1") // where she changes it
	inBrowser := b.watch(t, http.Header{"Cookie": {auth.CookieName + "=" + cookie}, "Origin": {b.URL()}}, id)
	byCLI, byHere, byKey := b.watch(t, bearer(cli), id), b.watch(t, bearer(here), id), b.watch(t, bearer(keyToken), id)

	if status, out := apiCall(t, hc, "POST", api+"/me/password", here, `{"current_password":"wrong-password-1","new_password":"tina-password-2"}`, nil); status != 400 {
		t.Fatalf("wrong current password: %d %v", status, out)
	}
	if status, out := apiCall(t, hc, "GET", api+"/me", cli, "", nil); status != 200 {
		t.Fatalf("a refused change ended a login: %d %v", status, out)
	}
	if status, out := apiCall(t, hc, "POST", api+"/me/password", here, `{"current_password":"tina-password-1","new_password":"tina-password-2"}`, nil); status != 204 {
		t.Fatalf("change: %d %v", status, out)
	}
	const why = "Your password was changed; sign in again with the new one."
	endedWith(t, "the other browser's connection", inBrowser, why)
	endedWith(t, "the viewer login's connection", byCLI, why)
	stillOpen(t, "the connection of the login that changed it", byHere)
	stillOpen(t, "the API key's connection", byKey)
	if status, _ := apiCall(t, browser, "GET", api+"/me", "", "", nil); status != 401 {
		t.Errorf("the other browser's login: %d, want 401", status)
	}
	for _, c := range []struct {
		what, token string
		want        int
	}{{"the viewer login", cli, 401}, {"the login that changed it", here, 200}, {"the API key", keyToken, 200}} {
		if status, _ := apiCall(t, hc, "GET", api+"/me", c.token, "", nil); status != c.want {
			t.Errorf("%s after the change: %d, want %d", c.what, status, c.want)
		}
	}
	if status, _ := apiCall(t, hc, "POST", api+"/login", "", `{"username":"tina","password":"tina-password-2"}`, nil); status != 200 {
		t.Errorf("login with the new password: %d", status)
	}
}

// TestEnrolmentEndsOtherLogins: turning two-factor authentication on ends
// every other login of the account (none of them gave a code) and the
// live connections made with them, at once; the login that turned it on
// and the account's API keys go on.
func TestEnrolmentEndsOtherLogins(t *testing.T) {
	b, hc, api, id := tinasSession(t)
	_, key := apiCall(t, hc, "POST", api+"/keys", b.admin.APIKey, `{"name":"tina's script","username":"tina","scopes":["sessions:read","sessions:join"]}`, nil)
	keyToken := key["key"].(string)
	other := b.loginToken(t, "tina", "tina-password-1")
	here := b.loginToken(t, "tina", "tina-password-1")
	byOther, byHere, byKey := b.watch(t, bearer(other), id), b.watch(t, bearer(here), id), b.watch(t, bearer(keyToken), id)

	status, out := apiCall(t, hc, "POST", api+"/me/totp", here, `{"password":"tina-password-1"}`, nil)
	if status != 200 {
		t.Fatalf("begin two-factor: %d %v", status, out)
	}
	code, err := auth.TOTPCode(out["secret"].(string), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if status, out := apiCall(t, hc, "POST", api+"/me/totp/confirm", here, `{"code":"`+code+`"}`, nil); status != 200 {
		t.Fatalf("confirm two-factor: %d %v", status, out)
	}
	endedWith(t, "the other login's connection", byOther, "Two-factor authentication was turned on for your account: sign in again with a code.")
	stillOpen(t, "the connection of the login that turned it on", byHere)
	stillOpen(t, "the API key's connection", byKey)
	for _, c := range []struct {
		what, token string
		want        int
	}{{"the other login", other, 401}, {"the login that turned it on", here, 200}, {"the API key", keyToken, 200}} {
		if status, _ := apiCall(t, hc, "GET", api+"/me", c.token, "", nil); status != c.want {
			t.Errorf("%s after two-factor was turned on: %d, want %d", c.what, status, c.want)
		}
	}
}

// TestLogoutEndsItsLogin: signing out ends that login and the live
// connections made with it, and no other; a cookie sign-out without the
// CSRF token is refused, and says so, rather than pretending.
func TestLogoutEndsItsLogin(t *testing.T) {
	b, hc, api, id := tinasSession(t)
	browser, cookie, csrf := b.browserLogin(t, hc, "tina", "tina-password-1")
	cli := b.loginToken(t, "tina", "tina-password-1")
	inBrowser := b.watch(t, http.Header{"Cookie": {auth.CookieName + "=" + cookie}, "Origin": {b.URL()}}, id)
	byCLI := b.watch(t, bearer(cli), id)

	if status, out := apiCall(t, browser, "POST", api+"/logout", "", "", map[string]string{"Origin": b.URL()}); status != 403 || errCode(out) != "csrf_failed" {
		t.Errorf("sign-out without the CSRF token: %d %v, want 403 csrf_failed", status, out)
	}
	if status, out := apiCall(t, browser, "POST", api+"/logout", "", "", map[string]string{"Origin": "https://evil.example", "X-CSRF-Token": csrf}); status != 403 || errCode(out) != "origin_refused" {
		t.Errorf("sign-out from another site: %d %v, want 403 origin_refused", status, out)
	}
	if status, _ := apiCall(t, hc, "GET", api+"/me", "", "", map[string]string{"Cookie": auth.CookieName + "=" + cookie}); status != 200 {
		t.Fatalf("a refused sign-out ended the login: %d", status)
	}
	if status, out := apiCall(t, browser, "POST", api+"/logout", "", "", map[string]string{"Origin": b.URL(), "X-CSRF-Token": csrf}); status != 204 {
		t.Fatalf("sign-out: %d %v", status, out)
	}
	if status, _ := apiCall(t, hc, "GET", api+"/me", "", "", map[string]string{"Cookie": auth.CookieName + "=" + cookie}); status != 401 {
		t.Errorf("the signed-out cookie: %d, want 401", status)
	}
	endedWith(t, "the browser's connection", inBrowser, "You signed out.")
	stillOpen(t, "the viewer login's connection", byCLI)

	if status, out := apiCall(t, hc, "POST", api+"/logout", cli, "", nil); status != 204 {
		t.Fatalf("viewer logout: %d %v", status, out)
	}
	endedWith(t, "the viewer login's connection", byCLI, "You signed out.")
	if status, _ := apiCall(t, hc, "GET", api+"/me", cli, "", nil); status != 401 {
		t.Errorf("the signed-out token: %d, want 401", status)
	}
	if status, _ := apiCall(t, hc, "POST", api+"/logout", "", "", nil); status != 204 {
		t.Errorf("sign-out without a login: %d, want 204", status)
	}
}

// TestSignOutWhileJoining: a connection authenticated just before its
// login signs out, and joining just after, is cut off as those joined
// before are: the sign-out found nothing to cut off yet.
func TestSignOutWhileJoining(t *testing.T) {
	b, hc, api, id := tinasSession(t)
	token := b.loginToken(t, "tina", "tina-password-1")
	u, _ := dial.BrokerURL(b.URL())
	tlsCfg, _ := dial.TLSConfig(b.CAFile())
	ws, err := dial.WebSocket(context.Background(), u, "/ws/viewer", tlsCfg, bearer(token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if status, out := apiCall(t, hc, "POST", api+"/logout", token, "", nil); status != 204 {
		t.Fatalf("logout: %d %v", status, out)
	}
	hello, _ := protocol.Encode(protocol.TypeHello, id, protocol.Hello{Version: protocol.Version, Role: protocol.RoleViewer, Session: id})
	ws.WriteMessage(websocket.TextMessage, hello)
	endedWith(t, "the connection that joined after its sign-out", ws, "You signed out.")
}

// clientFrom is an HTTP client whose connections come from the local
// address ip (127.0.0.2 is another machine to the broker).
func clientFrom(t *testing.T, b *broker, ip string) *http.Client {
	t.Helper()
	tlsCfg, err := dial.TLSConfig(b.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, DialContext: d.DialContext}, Timeout: 30 * time.Second}
}

// TestLockoutCannotShutOutTheOwner: a stranger guessing an account's
// password locks out their own address only, for at most 15 minutes at a
// time, while the owner signs in from theirs; after a quiet hour the count
// starts afresh.
func TestLockoutCannotShutOutTheOwner(t *testing.T) {
	b := startBroker(t)
	if err := b.CreateUser(context.Background(), "tina", "tina-password-1", "technician"); err != nil {
		t.Fatal(err)
	}
	owner, stranger := b.httpClient(t), clientFrom(t, b, "127.0.0.2")
	login := func(hc *http.Client, password string) (int, int) {
		t.Helper()
		req, _ := http.NewRequest("POST", b.URL()+"/api/v1/login", strings.NewReader(`{"username":"tina","password":"`+password+`"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return resp.StatusCode, retry
	}
	for i := range 5 {
		if status, _ := login(stranger, "guess-"+strconv.Itoa(i)); status != 401 {
			t.Fatalf("guess %d: %d", i, status)
		}
	}
	status, retry := login(stranger, "tina-password-1")
	if status != 429 || retry < 1 {
		t.Fatalf("the stranger's sixth try: %d, Retry-After %d; want 429 with a wait", status, retry)
	}
	if status, _ := login(owner, "tina-password-1"); status != 200 {
		t.Errorf("the owner, from another address, is shut out too: %d", status)
	}
	// The stranger keeps at it: each wait is longer, up to 15 minutes.
	for round := range 10 {
		b.advance(time.Duration(retry) * time.Second)
		if status, _ := login(stranger, "guess-again"); status != 401 {
			t.Fatalf("round %d, after the wait: %d", round, status)
		}
		if status, retry = login(stranger, "guess-more"); status != 429 || retry > 900 {
			t.Fatalf("round %d: %d, Retry-After %d; want 429 for at most 900 s", round, status, retry)
		}
	}
	if retry != 900 {
		t.Errorf("the longest wait is %d s, want 900", retry)
	}
	// An hour without a failure: the count starts afresh, and a mistyped
	// password from that address costs no more than a first one.
	b.advance(time.Duration(retry)*time.Second + time.Hour)
	for i := range 4 {
		if status, _ := login(stranger, "typo-"+strconv.Itoa(i)); status != 401 {
			t.Fatalf("after a quiet hour, typo %d: %d", i, status)
		}
	}
	if status, _ := login(stranger, "tina-password-1"); status != 200 {
		t.Errorf("after a quiet hour and four typos: %d, want 200", status)
	}
}

// startBrokerLogging starts a broker whose log the test reads too.
func startBrokerLogging(t *testing.T) (*broker, *syncBuffer) {
	t.Helper()
	var log syncBuffer
	b := startBrokerWith(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, &log), &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	return b, &log
}

// logged checks that a line of the broker's log says each of want.
func logged(t *testing.T, log *syncBuffer, want ...string) {
	t.Helper()
	for _, line := range strings.Split(log.String(), "\n") {
		if !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(line, w) }) {
			return
		}
	}
	t.Errorf("no line of the broker's log says %q", want)
}

// TestStolenLoginCannotGuess: someone holding a login (a stolen cookie)
// cannot try password after password on the password change, nor code
// after code to turn two-factor authentication off: wrong ones count like
// failed logins, lock out after five, and are logged with the address.
func TestStolenLoginCannotGuess(t *testing.T) {
	b, log := startBrokerLogging(t)
	if err := b.CreateUser(context.Background(), "tina", "tina-password-1", "technician"); err != nil {
		t.Fatal(err)
	}
	hc := newSpecChecker(t, b).client()
	api := b.URL() + "/api/v1"
	tok := b.loginToken(t, "tina", "tina-password-1")
	call := func(method, path, body string) (int, map[string]any, int) {
		t.Helper()
		req, _ := http.NewRequest(method, api+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return resp.StatusCode, out, retry
	}

	for i := range 5 {
		if status, out, _ := call("POST", "/me/password", `{"current_password":"guess-`+strconv.Itoa(i)+`","new_password":"mine-now-123456"}`); status != 400 || errCode(out) != "bad_credentials" {
			t.Fatalf("guess %d: %d %v", i, status, out)
		}
	}
	if status, out, retry := call("POST", "/me/password", `{"current_password":"tina-password-1","new_password":"mine-now-123456"}`); status != 429 || errCode(out) != "locked_out" || retry < 1 {
		t.Errorf("the sixth guess at the current password: %d %v (Retry-After %d), want 429 locked_out", status, out, retry)
	}
	logged(t, log, `msg="wrong current password to change the password"`, "user=tina", "source=127.0.0.1")
	// A quiet hour, while tina works on, and the count starts afresh.
	for range 4 {
		b.advance(20 * time.Minute)
		if status, _, _ := call("GET", "/me", ""); status != 200 {
			t.Fatalf("tina's login: %d", status)
		}
	}

	// Tina turns two-factor authentication on; someone with her login and
	// her password still cannot guess a code to turn it off.
	_, enrol, _ := call("POST", "/me/totp", `{"password":"tina-password-1"}`)
	secret := enrol["secret"].(string)
	code, _ := auth.TOTPCode(secret, b.now())
	if status, out, _ := call("POST", "/me/totp/confirm", `{"code":"`+code+`"}`); status != 200 {
		t.Fatalf("confirm: %d %v", status, out)
	}
	b.advance(30 * time.Second)
	for i := range 5 {
		if status, out, _ := call("DELETE", "/me/totp", `{"password":"tina-password-1","code":"00000`+strconv.Itoa(i)+`"}`); status != 400 || errCode(out) != "bad_totp" {
			t.Fatalf("code guess %d: %d %v", i, status, out)
		}
	}
	code, _ = auth.TOTPCode(secret, b.now())
	status, out, retry := call("DELETE", "/me/totp", `{"password":"tina-password-1","code":"`+code+`"}`)
	if status != 429 || errCode(out) != "locked_out" || retry < 1 {
		t.Fatalf("the sixth code: %d %v (Retry-After %d), want 429 locked_out", status, out, retry)
	}
	logged(t, log, `msg="wrong two-factor code to turn two-factor off"`, "user=tina", "source=127.0.0.1")
	// The wait over, the owner with the right code turns it off.
	b.advance(time.Duration(retry) * time.Second)
	code, _ = auth.TOTPCode(secret, b.now())
	if status, out, _ := call("DELETE", "/me/totp", `{"password":"tina-password-1","code":"`+code+`"}`); status != 204 {
		t.Errorf("the right code after the wait: %d %v", status, out)
	}
}

// TestFailedLoginLogsNoPassword: someone who types their password into
// the username field does not find it in the broker's log; a failed login
// names the account only when there is one, and always the address.
func TestFailedLoginLogsNoPassword(t *testing.T) {
	b, log := startBrokerLogging(t)
	if err := b.CreateUser(context.Background(), "tina", "tina-password-1", "technician"); err != nil {
		t.Fatal(err)
	}
	hc := newSpecChecker(t, b).client()
	api := b.URL() + "/api/v1"
	if status, _ := apiCall(t, hc, "POST", api+"/login", "", `{"username":"MySecretPassw0rd!","password":"tina"}`, nil); status != 401 {
		t.Fatalf("password typed as the username: %d", status)
	}
	if status, _ := apiCall(t, hc, "POST", api+"/login", "", `{"username":"tina","password":"tina-password-2"}`, nil); status != 401 {
		t.Fatalf("wrong password: %d", status)
	}
	if strings.Contains(log.String(), "MySecretPassw0rd") {
		t.Errorf("the broker's log holds what was typed as a username:\n%s", log.String())
	}
	logged(t, log, "level=WARN", "no account has the username given", "source=127.0.0.1")
	logged(t, log, "level=WARN", `msg="failed login"`, "user=tina", "source=127.0.0.1")
}
