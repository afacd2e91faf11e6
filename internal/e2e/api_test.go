package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// apiCall makes one REST call; token is a bearer token (or "" for none).
func apiCall(t *testing.T, hc *http.Client, method, url, token, body string, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// TestAPIAccess: who may see and end which session, CSRF on cookie
// logins, and bad input rejected with a stable code.
func TestAPIAccess(t *testing.T) {
	b := startBroker(t)
	ctx := context.Background()
	for _, u := range []struct{ name, role string }{{"tina", "technician"}, {"tom", "technician"}, {"sue", "supervisor"}} {
		if err := b.CreateUser(ctx, u.name, u.name+"-password-1", u.role); err != nil {
			t.Fatal(err)
		}
	}
	tlsCfg, _ := dial.TLSConfig(b.CAFile())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	token := map[string]string{"admin": b.admin.APIKey}
	for _, name := range []string{"tina", "tom", "sue"} {
		u, _ := dial.BrokerURL(b.URL())
		c, err := client.New(client.Config{Broker: u, CAFile: b.CAFile()})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.Login(ctx, name, name+"-password-1", "")
		if err != nil {
			t.Fatal(err)
		}
		token[name] = tok
	}
	api := b.URL() + "/api/v1"
	status, out := apiCall(t, hc, "POST", api+"/sessions", token["tina"], `{"ticket":{"id":"INC-1"}}`, nil)
	if status != 201 {
		t.Fatalf("tina creates: %d %v", status, out)
	}
	id := out["id"].(string)

	for _, c := range []struct {
		who, method, path string
		want              int
	}{
		{"tina", "GET", "/sessions/" + id, 200},
		{"tom", "GET", "/sessions/" + id, 404},
		{"sue", "GET", "/sessions/" + id, 200},
		{"admin", "GET", "/sessions/" + id, 200},
		{"tom", "GET", "/sessions/" + id + "/events", 404},
		{"tina", "GET", "/sessions/" + id + "/events", 200},
		{"tom", "POST", "/sessions/" + id + "/end", 404},
		{"", "GET", "/sessions/" + id, 401},
		{"", "POST", "/sessions", 401},
	} {
		if status, out := apiCall(t, hc, c.method, api+c.path, token[c.who], "", nil); status != c.want {
			t.Errorf("%s %s %s: %d, want %d (%v)", c.who, c.method, c.path, status, c.want, out)
		}
	}
	// The scheme's name is case-insensitive.
	if status, out := apiCall(t, hc, "GET", api+"/sessions/"+id, "", "", map[string]string{"Authorization": "bearer " + token["tina"]}); status != 200 {
		t.Errorf("a lower-case bearer scheme: %d %v", status, out)
	}
	// Tom's list does not show Tina's session; the supervisor's does.
	for who, want := range map[string]int{"tom": 0, "sue": 1} {
		_, out := apiCall(t, hc, "GET", api+"/sessions", token[who], "", nil)
		if got := len(out["sessions"].([]any)); got != want {
			t.Errorf("%s lists %d sessions, want %d", who, got, want)
		}
	}

	for _, c := range []struct{ body, code string }{
		{`{"ticket":{"id":"` + strings.Repeat("x", 200) + `"}}`, "invalid_ticket"},
		{`{"permissions":["view","root"]}`, "invalid_permissions"},
		{`{"code_ttl_seconds":5}`, "invalid_code_ttl"},
		{`{"surprise":1}`, "invalid_json"},
		{`{"ticket":`, "invalid_json"},
	} {
		if status, out := apiCall(t, hc, "POST", api+"/sessions", token["tina"], c.body, nil); status != 400 || errCode(out) != c.code {
			t.Errorf("body %.40s: %d %v, want 400 %s", c.body, status, out, c.code)
		}
	}

	// Cookie logins need the CSRF token to change anything.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Jar: jar}
	status, out = apiCall(t, browser, "POST", api+"/login", "", `{"username":"tina","password":"tina-password-1"}`, nil)
	if status != 200 {
		t.Fatalf("login: %d %v", status, out)
	}
	csrf := out["csrf_token"].(string)
	if status, out := apiCall(t, browser, "POST", api+"/sessions", "", `{}`, nil); status != 403 || errCode(out) != "csrf_failed" {
		t.Errorf("cookie POST without CSRF: %d %v", status, out)
	}
	if status, _ := apiCall(t, browser, "POST", api+"/sessions", "", `{}`, map[string]string{"X-CSRF-Token": csrf}); status != 201 {
		t.Errorf("cookie POST with CSRF: %d", status)
	}
	if status, _ := apiCall(t, browser, "POST", api+"/login", "", `{"username":"tina","password":"wrong"}`, nil); status != 401 {
		t.Errorf("wrong password: %d", status)
	}
}

// TestInviteAndHandOver: the session's technician (or an admin) decides
// who works it. A colleague invited in cannot hand the session over to
// themselves and shut its technician out, nor invite others; disabled
// accounts and supervisors (who watch any session uninvited) are refused
// with a reason.
func TestInviteAndHandOver(t *testing.T) {
	b := startBroker(t)
	ctx := context.Background()
	for _, u := range []struct{ name, role string }{{"tina", "technician"}, {"tom", "technician"}, {"lee", "technician"}, {"sue", "supervisor"}, {"old", "technician"}} {
		if err := b.CreateUser(ctx, u.name, u.name+"-password-1", u.role); err != nil {
			t.Fatal(err)
		}
	}
	hc := newSpecChecker(t, b).client()
	api := b.URL() + "/api/v1"
	if status, out := apiCall(t, hc, "PATCH", api+"/users/old", b.admin.APIKey, `{"disabled":true}`, nil); status != 200 {
		t.Fatalf("disable: %d %v", status, out)
	}
	token := map[string]string{}
	for _, name := range []string{"tina", "tom"} {
		token[name] = b.loginToken(t, name, name+"-password-1")
	}
	status, out := apiCall(t, hc, "POST", api+"/sessions", token["tina"], `{"ticket":{"id":"INC-5"}}`, nil)
	if status != 201 {
		t.Fatalf("create: %d %v", status, out)
	}
	id := out["id"].(string)
	call := func(who, what, username string) (int, map[string]any) {
		return apiCall(t, hc, "POST", api+"/sessions/"+id+"/"+what, token[who], `{"username":"`+username+`"}`, nil)
	}
	if status, out := call("tina", "invite", "tom"); status != 200 {
		t.Fatalf("tina invites tom: %d %v", status, out)
	}
	for _, c := range []struct{ what, username string }{{"handover", "tom"}, {"handover", "lee"}, {"invite", "lee"}} {
		if status, out := call("tom", c.what, c.username); status != 403 || errCode(out) != "forbidden" {
			t.Errorf("invited tom: %s to %s: %d %v, want 403 forbidden", c.what, c.username, status, out)
		}
	}
	// The session is still tina's, with its trail.
	if status, out := apiCall(t, hc, "GET", api+"/sessions/"+id, token["tina"], "", nil); status != 200 || out["technician"] != "tina" {
		t.Errorf("tina's session after tom's attempts: %d %v", status, out)
	}
	if status, _ := apiCall(t, hc, "GET", api+"/sessions/"+id+"/events", token["tina"], "", nil); status != 200 {
		t.Errorf("tina's trail: %d", status)
	}
	for _, c := range []struct{ what, username, code, says string }{
		{"invite", "old", "account_disabled", "disabled"},
		{"handover", "old", "account_disabled", "disabled"},
		{"invite", "sue", "invalid_username", "supervisor"},
		{"handover", "sue", "invalid_username", "supervisor"},
		{"invite", "nobody", "invalid_username", "technician or admin"},
	} {
		status, out := call("tina", c.what, c.username)
		msg, _ := out["error"].(map[string]any)["message"].(string)
		if status != 400 || errCode(out) != c.code || !strings.Contains(msg, c.says) {
			t.Errorf("%s to %s: %d %v, want 400 %s saying %q", c.what, c.username, status, out, c.code, c.says)
		}
	}
	// Who may not invite learns nothing of the account they name: a
	// colleague invited in, one not invited, a session made up.
	token["lee"] = b.loginToken(t, "lee", "lee-password-1")
	for _, c := range []struct {
		who, session string
		status       int
	}{{"tom", id, 403}, {"lee", id, 404}, {"lee", "s_madeupmadeup00", 404}} {
		for _, username := range []string{"old", "sue", "nobody"} {
			status, out := apiCall(t, hc, "POST", api+"/sessions/"+c.session+"/invite", token[c.who], `{"username":"`+username+`"}`, nil)
			if status != c.status || strings.Contains(fmt.Sprint(out), username) {
				t.Errorf("%s invites %s into %s: %d %v, want %d saying nothing of the account", c.who, username, c.session, status, out, c.status)
			}
		}
	}
	// The technician hands over; the admin may too.
	if status, out := call("tina", "handover", "tom"); status != 200 || out["technician"] != "tom" {
		t.Fatalf("tina hands over to tom: %d %v", status, out)
	}
	token["admin"] = b.admin.APIKey
	if status, out := call("admin", "handover", "lee"); status != 200 || out["technician"] != "lee" {
		t.Errorf("the admin hands over to lee: %d %v", status, out)
	}
}

// TestAPIWrongMethod: a method an endpoint does not take is answered 405
// with the methods it does take (Allow) and the usual error body, not 404
// "No such API endpoint", which sends an integrator looking for a typo in
// a path that is right.
func TestAPIWrongMethod(t *testing.T) {
	b := startBroker(t)
	hc := newSpecChecker(t, b).client()
	api := b.URL() + "/api/v1"
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"PUT", "/sessions", 405, "GET, HEAD, POST"},
		{"DELETE", "/sessions/s_anything", 405, "GET, HEAD"},
		{"GET", "/sessions/s_anything/end", 405, "POST"},
		{"POST", "/settings", 405, "GET, HEAD, PUT"},
		{"PUT", "/webhooks/wh_anything", 405, "GET, HEAD, PATCH, DELETE"},
		{"GET", "/sesions", 404, ""},
		{"DELETE", "/sessions/s_anything/nothing", 404, ""},
	} {
		req, _ := http.NewRequest(c.method, api+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+b.admin.APIKey)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		want := map[int]string{405: "method_not_allowed", 404: "not_found"}[c.status]
		if resp.StatusCode != c.status || resp.Header.Get("Allow") != c.allow || errCode(out) != want {
			t.Errorf("%s %s: %d Allow %q %v, want %d Allow %q %s", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), out, c.status, c.allow, want)
		}
	}
}

// TestLiveCodeCap: a technician has at most 100 support codes waiting for
// users at once, so an integration creating sessions in a loop cannot fill
// the code space guessers aim at. The refusal names the limit; a code that
// is used up, expires or whose session ends makes room again, and other
// technicians are not held back.
func TestLiveCodeCap(t *testing.T) {
	b := startBroker(t)
	ctx := context.Background()
	for _, name := range []string{"tina", "tom"} {
		if err := b.CreateUser(ctx, name, name+"-password-1", "technician"); err != nil {
			t.Fatal(err)
		}
	}
	hc := newSpecChecker(t, b).client()
	api := b.URL() + "/api/v1"
	tina, tom := b.loginToken(t, "tina", "tina-password-1"), b.loginToken(t, "tom", "tom-password-1")
	create := func(token, body string) (int, map[string]any) {
		return apiCall(t, hc, "POST", api+"/sessions", token, body, nil)
	}
	var ids []string
	for i := range 100 {
		ttl := 86400
		if i < 10 {
			ttl = 60 // these expire below
		}
		status, out := create(tina, fmt.Sprintf(`{"ticket":{"id":"INC-%d"},"code_ttl_seconds":%d}`, i, ttl))
		if status != 201 {
			t.Fatalf("session %d: %d %v", i+1, status, out)
		}
		ids = append(ids, out["id"].(string))
	}
	refused := func(who, token, body string) {
		t.Helper()
		status, out := create(token, body)
		e, _ := out["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if status != 409 || errCode(out) != "too_many_codes" || !strings.Contains(msg, "100") {
			t.Errorf("%s: %d %v, want 409 too_many_codes naming the limit", who, status, out)
		}
	}
	refused("tina's 101st code", tina, `{"ticket":{"id":"INC-101"}}`)
	refused("an admin assigning tina a 101st", b.admin.APIKey, `{"ticket":{"id":"INC-101"},"technician":"tina"}`)
	if status, out := create(tom, `{"ticket":{"id":"INC-200"}}`); status != 201 {
		t.Errorf("tom's first code: %d %v", status, out)
	}
	// Ending a session frees its code's place.
	if status, out := apiCall(t, hc, "POST", api+"/sessions/"+ids[99]+"/end", tina, `{}`, nil); status != 200 {
		t.Fatalf("end: %d %v", status, out)
	}
	if status, out := create(tina, `{"ticket":{"id":"INC-101"}}`); status != 201 {
		t.Errorf("after ending one: %d %v", status, out)
	}
	refused("tina at the cap again", tina, `{"ticket":{"id":"INC-102"}}`)
	// So does a code that expires.
	b.advance(2 * time.Minute)
	for i := range 10 {
		if status, out := create(tina, fmt.Sprintf(`{"ticket":{"id":"INC-3%02d"}}`, i)); status != 201 {
			t.Fatalf("after 10 codes expired, new code %d: %d %v", i+1, status, out)
		}
	}
	refused("tina at the cap after the expired ones", tina, `{"ticket":{"id":"INC-400"}}`)
}

// TestAPIOptionalBodyChunked: creating and ending a session take their
// body as optional, also when a client sends an empty body chunked (no
// Content-Length), as some HTTP libraries do for every POST.
func TestAPIOptionalBodyChunked(t *testing.T) {
	b := startBroker(t)
	hc := newSpecChecker(t, b).client()
	post := func(path string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", b.URL()+"/api/v1"+path, strings.NewReader(""))
		req.TransferEncoding = []string{"chunked"}
		req.Header.Set("Authorization", "Bearer "+b.admin.APIKey)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, out := post("/sessions")
	if status != 201 {
		t.Fatalf("create with an empty chunked body: %d %v", status, out)
	}
	if status, out := post("/sessions/" + out["id"].(string) + "/end"); status != 200 || out["state"] != "ended" {
		t.Errorf("end with an empty chunked body: %d %v", status, out)
	}
}

// TestHealth: monitoring asks /healthz without a login: 200 while the broker
// can work, 503 naming the problem when the disk its data is on is full.
func TestHealth(t *testing.T) {
	health := func(b *broker) (int, map[string]any) {
		return apiCall(t, newSpecChecker(t, b).client(), "GET", b.URL()+"/healthz", "", "", nil)
	}
	if status, out := health(startBroker(t)); status != 200 || out["status"] != "ok" {
		t.Errorf("health of a broker that can work: %d %v", status, out)
	}
	mnt := smallDisk(t, 16)
	b := startBrokerWith(t, func(c *server.Config) { c.DataDir = mnt })
	status, out := health(b)
	if problems := fmt.Sprint(out["problems"]); status != 503 || out["status"] != "unavailable" || !strings.Contains(problems, "data directory's disk is full") || !strings.Contains(problems, "sessions cannot start") {
		t.Errorf("health with the data disk nearly full: %d %v", status, out)
	}
}

// TestConsoleListsNoFolders: the console's files are served, and so is
// its page at /console/, but a folder of them is answered 404, never with
// the list of its files.
func TestConsoleListsNoFolders(t *testing.T) {
	b := startBroker(t)
	hc := b.httpClient(t)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := hc.Get(b.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, p := range []string{"/console/vendor/", "/console/vendor", "/console/vendor/lean-qr/"} {
		if status, body := get(p); status != 404 || strings.Contains(body, "<a href") {
			t.Errorf("GET %s: %d %.200s, want 404 without a list of files", p, status, body)
		}
	}
	for _, p := range []string{"/console/", "/console/app.js", "/console/vendor/lean-qr/index.mjs", "/"} {
		if status, _ := get(p); status != 200 {
			t.Errorf("GET %s: %d, want 200", p, status)
		}
	}
}

// TestEveryAnswerCarriesSecurityHeaders: the console, its files, the API
// (errors included), the join page and the health check all tell the
// browser not to let other sites frame them (clickjacking), not to guess
// content types, to keep to https and to send no referrer, and limit what
// a page may load. A handler added outside the wrapper would lose them.
func TestEveryAnswerCarriesSecurityHeaders(t *testing.T) {
	b := startBroker(t)
	hc := b.httpClient(t)
	want := map[string]string{
		"Content-Security-Policy":    "frame-ancestors 'none'",
		"X-Frame-Options":            "DENY",
		"X-Content-Type-Options":     "nosniff",
		"Strict-Transport-Security":  "max-age=",
		"Referrer-Policy":            "no-referrer",
		"Cross-Origin-Opener-Policy": "same-origin",
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/", 200},
		{"GET", "/console/app.js", 200},
		{"GET", "/console/vendor/", 404},
		{"GET", "/api/v1/me", 401},
		{"POST", "/api/v1/sessions", 401},
		{"GET", "/api/v1/nothing-here", 404},
		{"GET", "/join/123456789", 404},
		{"GET", "/healthz", 200},
		{"GET", "/no-such-page", 404},
	} {
		req, _ := http.NewRequest(c.method, b.URL()+c.path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.status)
		}
		for name, part := range want {
			if got := resp.Header.Get(name); !strings.Contains(got, part) {
				t.Errorf("%s %s: %s is %q, want it to hold %q", c.method, c.path, name, got, part)
			}
		}
	}
}

// TestHandOverShutsOutLiveConnection: a technician who hands their session
// over is no longer let in, and their connection open at the time is cut
// off too (the session goes on for the user and for the colleague who
// took it over); until now it kept whatever the user had allowed. So for
// each handover of a chain, and a search for someone's work finds the
// sessions they handed over.
func TestHandOverShutsOutLiveConnection(t *testing.T) {
	// Mostly waiting for the broker and the user's computer to answer: it
	// runs beside the other tests that wait.
	t.Parallel()
	display := xtest.StartXvfb(t, 320, 240)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, name := range []string{"tina", "tom", "lee"} {
		if err := b.CreateUser(ctx, name, name+"-password-1", "technician"); err != nil {
			t.Fatal(err)
		}
	}
	tina := b.login(t, ctx, "tina", "tina-password-1")
	sess, j, _ := joinLiveAs(t, ctx, tina, hostOn(t, b, display))
	if err := tina.Invite(ctx, sess.ID, "tom", true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-j.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the technician who handed the session over is still connected to it")
	}
	if !j.Disconnected() || j.EndReason() != "The session was handed over to tom." {
		t.Errorf("cut off %v, for %q", j.Disconnected(), j.EndReason())
	}
	if s, err := b.client(t).Session(ctx, sess.ID); err != nil || s.State != "active" {
		t.Errorf("the session after the handover: %+v, %v; want it going on", s, err)
	}

	// tom hands it on to lee, who hands it back to tina: each who handed
	// it over is cut off and kept out (tom kept it for good), and tina,
	// its technician again, is let in.
	tom := b.login(t, ctx, "tom", "tom-password-1")
	lee := b.login(t, ctx, "lee", "lee-password-1")
	for _, step := range []struct {
		from     *client.Client
		name, to string
	}{{tom, "tom", "lee"}, {lee, "lee", "tina"}} {
		j, err := step.from.Join(ctx, sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if _, err := j.Screenshot(ctx); err != nil {
			t.Fatalf("%s, the session's technician, sees nothing: %v", step.name, err)
		}
		if err := step.from.Invite(ctx, sess.ID, step.to, true); err != nil {
			t.Fatal(err)
		}
		select {
		case <-j.Done():
		case <-time.After(10 * time.Second):
			t.Errorf("%s handed the session over to %s, and is still connected to it", step.name, step.to)
		}
		if _, err := step.from.Session(ctx, sess.ID); err == nil {
			t.Errorf("%s reads the session they handed over", step.name)
		}
	}
	if _, err := tina.Session(ctx, sess.ID); err != nil {
		t.Errorf("tina, whom the session was handed back to, cannot read it: %v", err)
	}
	// Whoever had it is found by a search for their work.
	for _, name := range []string{"tina", "tom", "lee"} {
		status, out := apiCall(t, b.httpClient(t), "GET", b.URL()+"/api/v1/sessions?technician="+name, b.admin.APIKey, "", nil)
		if list, _ := out["sessions"].([]any); status != 200 || len(list) != 1 {
			t.Errorf("sessions?technician=%s: %d %v, want the session handed over", name, status, out)
		}
	}
}

// TestLoginExpiryEndsLiveConnection: a console login lasts LoginTTL at
// most, and a connection made with it ends with it: until now it went on
// for as long as it stayed open, with whatever the user had allowed. The
// session goes on.
func TestLoginExpiryEndsLiveConnection(t *testing.T) {
	const ttl = 4 * time.Second
	display := xtest.StartXvfb(t, 320, 240)
	b := startBrokerWith(t, func(c *server.Config) { c.LoginTTL = ttl })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.CreateUser(ctx, "tina", "tina-password-1", "technician"); err != nil {
		t.Fatal(err)
	}
	signedIn := time.Now()
	sess, j, _ := joinLiveAs(t, ctx, b.login(t, ctx, "tina", "tina-password-1"), hostOn(t, b, display))
	select {
	case <-j.Done():
	case <-time.After(ttl + 10*time.Second):
		t.Fatalf("the connection is still open %v after its login expired", time.Since(signedIn)-ttl)
	}
	if !j.Disconnected() || j.EndReason() != "Your sign-in has expired: sign in again to go on." {
		t.Errorf("cut off %v, for %q", j.Disconnected(), j.EndReason())
	}
	if early := time.Since(signedIn); early < ttl {
		t.Errorf("cut off %v after signing in, before the login expired", early)
	}
	if s, err := b.client(t).Session(ctx, sess.ID); err != nil || s.State != "active" {
		t.Errorf("the session after the login expired: %+v, %v; want it going on", s, err)
	}
}

// hostOn starts, for a code, a host on display that joins b and allows
// everything asked.
func hostOn(t *testing.T, b *broker, display string) func(code string) *hostProc {
	return func(code string) *hostProc { return startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), code) }
}
