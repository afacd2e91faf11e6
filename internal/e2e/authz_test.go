package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
)

// policy is the authorization policy as the product promises it: what
// each role may do. Ownership comes on top: a technician only reaches
// sessions that are theirs.
var policy = map[string][]string{
	"technician": {"sessions:create", "sessions:read", "sessions:write", "sessions:join", "recordings:read"},
	"supervisor": {"sessions:read", "sessions:join", "recordings:read"},
	"admin": {"sessions:create", "sessions:read", "sessions:write", "sessions:join", "recordings:read",
		"webhooks:admin", "users:admin", "metrics:read"},
}

type principal struct {
	name   string
	user   string   // the account it acts as
	role   string   // that account's role
	scopes []string // nil for logins
	token  string
}

func (p principal) may(scope string) bool {
	return scope == "" || slices.Contains(policy[p.role], scope) && (p.scopes == nil || slices.Contains(p.scopes, scope))
}

// TestAuthorizationMatrix: every role and every API key scope against
// every endpoint, on their own session and on another technician's.
func TestAuthorizationMatrix(t *testing.T) {
	b := startBrokerWith(t, func(c *server.Config) { c.Webhooks.AllowLoopback = true })
	sc := newSpecChecker(t, b)
	hc := sc.client()
	base := b.URL() + "/api/v1"
	ctx := context.Background()
	admin := b.admin.APIKey
	mustCall := func(method, path, token, body string, want int) map[string]any {
		t.Helper()
		status, out := apiCall(t, hc, method, base+path, token, body, nil)
		if status != want {
			t.Fatalf("%s %s: %d, want %d: %v", method, path, status, want, out)
		}
		return out
	}
	for _, u := range []struct{ name, role string }{{"tina", "technician"}, {"tom", "technician"}, {"sue", "supervisor"}, {"dummy", "technician"}} {
		if err := b.CreateUser(ctx, u.name, u.name+"-password-1", u.role); err != nil {
			t.Fatal(err)
		}
	}
	principals := []principal{
		{name: "tina", user: "tina", role: "technician"},
		{name: "tom", user: "tom", role: "technician"},
		{name: "sue", user: "sue", role: "supervisor"},
		{name: "admin", user: "admin", role: "admin", token: admin}, // the initial key holds every scope
	}
	for i := range principals[:3] {
		principals[i].token = b.loginToken(t, principals[i].user, principals[i].user+"-password-1")
	}
	for _, scope := range policy["admin"] {
		k := mustCall("POST", "/keys", admin, `{"name":"only `+scope+`","scopes":["`+scope+`"]}`, 201)
		principals = append(principals, principal{name: "admin key " + scope, user: "admin", role: "admin", scopes: []string{scope}, token: k["key"].(string)})
	}
	k := mustCall("POST", "/keys", admin, `{"name":"tina's script","username":"tina","scopes":["sessions:read","sessions:join"]}`, 201)
	principals = append(principals, principal{name: "tina's key", user: "tina", role: "technician", scopes: []string{"sessions:read", "sessions:join"}, token: k["key"].(string)})
	k = mustCall("POST", "/keys", admin, `{"name":"sue's reader","username":"sue","scopes":["sessions:read"]}`, 201)
	principals = append(principals, principal{name: "sue's key", user: "sue", role: "supervisor", scopes: []string{"sessions:read"}, token: k["key"].(string)})

	// A username is at most as long as a sign-in takes (auth.MaxUsernameLength).
	mustCall("POST", "/users", admin, `{"username":"`+strings.Repeat("u", 32)+`","role":"technician"}`, 201)
	mustCall("POST", "/users", admin, `{"username":"`+strings.Repeat("v", 33)+`","role":"technician"}`, 400)

	// newSession makes a session owned by owner, for cells that change it.
	newSession := func(owner string) string {
		return mustCall("POST", "/sessions", admin, `{"ticket":{"id":"INC-1"},"technician":"`+owner+`"}`, 201)["id"].(string)
	}
	tinas, toms := newSession("tina"), newSession("tom")

	type endpoint struct {
		method, path, body string
		scope              string
		perSession         bool // {s} is a session: technicians reach only theirs
		fresh              bool // the call changes the session: use a new one
		ok                 []int
		// grants is the role of an account the call lets the caller sign
		// in as (made, promoted or reset): it needs every scope of it.
		grants string
	}
	n := 0
	unique := func() string { n++; return fmt.Sprint(n) }
	endpoints := []endpoint{
		{"GET", "/me", "", "", false, false, []int{200}, ""},
		{"POST", "/sessions", `{"ticket":{"id":"INC-2"}}`, "sessions:create", false, false, []int{201}, ""},
		{"POST", "/sessions/claim", `{"code":"123456789","ticket":{"id":"INC-2"}}`, "sessions:create", false, false, []int{404, 429}, ""},
		{"GET", "/sessions", "", "sessions:read", false, false, []int{200}, ""},
		{"GET", "/sessions/{s}", "", "sessions:read", true, false, []int{200}, ""},
		{"GET", "/sessions/{s}/events", "", "sessions:read", true, false, []int{200}, ""},
		{"POST", "/sessions/{s}/invite", `{"username":"dummy"}`, "sessions:write", true, true, []int{200}, ""},
		{"POST", "/sessions/{s}/handover", `{"username":"dummy"}`, "sessions:write", true, true, []int{200}, ""},
		{"POST", "/sessions/{s}/end", `{}`, "sessions:write", true, true, []int{200}, ""},
		{"GET", "/users", "", "users:admin", false, false, []int{200}, ""},
		{"POST", "/users", `{"username":"u{n}","role":"technician"}`, "users:admin", false, false, []int{201}, "technician"},
		{"PATCH", "/users/dummy", `{"role":"technician"}`, "users:admin", false, false, []int{200}, ""},
		{"POST", "/users/dummy/reset", "", "users:admin", false, false, []int{200}, "technician"},
		{"GET", "/keys", "", "users:admin", false, false, []int{200}, ""},
		{"POST", "/keys", `{"name":"k{n}","scopes":["users:admin"]}`, "users:admin", false, false, []int{201}, ""},
		{"DELETE", "/keys/{k}", "", "users:admin", false, false, []int{200}, ""},
		{"GET", "/settings", "", "users:admin", false, false, []int{200}, ""},
		{"PUT", "/settings", `{"totp_required_roles":[]}`, "users:admin", false, false, []int{200}, ""},
		{"GET", "/audit/codes", "", "users:admin", false, false, []int{200}, ""},
		// These sessions were never connected, so have no recording: 404
		// for whoever may look (TestRecordingAccess covers real ones).
		{"GET", "/recordings", "", "recordings:read", false, false, []int{200}, ""},
		{"GET", "/recordings/{s}", "", "recordings:read", true, false, []int{404}, ""},
		{"GET", "/webhooks", "", "webhooks:admin", false, false, []int{200}, ""},
		{"POST", "/webhooks", `{"url":"http://127.0.0.1:9/hook{n}","events":["session.ended"]}`, "webhooks:admin", false, false, []int{201}, ""},
		// Served beside the API, not under /api/v1 (see outsideAPI).
		{"GET", "/metrics", "", "metrics:read", false, false, []int{200}, ""},
	}
	// outsideAPI are the endpoints above served at the broker's root.
	outsideAPI := map[string]bool{"/metrics": true}
	cells := 0
	for _, p := range principals {
		for _, e := range endpoints {
			targets := []string{""}
			if e.perSession {
				targets = []string{"tina", "tom"}
			}
			for _, owner := range targets {
				path, body := e.path, strings.ReplaceAll(e.body, "{n}", unique())
				if e.perSession {
					id := map[string]string{"tina": tinas, "tom": toms}[owner]
					if e.fresh {
						id = newSession(owner)
					}
					path = strings.ReplaceAll(path, "{s}", id)
				}
				if strings.Contains(path, "{k}") {
					k := mustCall("POST", "/keys", admin, `{"name":"to revoke","scopes":["sessions:read"]}`, 201)
					path = strings.ReplaceAll(path, "{k}", k["id"].(string))
				}
				want := e.ok
				switch {
				case !p.may(e.scope):
					want = []int{403}
				case slices.ContainsFunc(policy[e.grants], func(sc string) bool { return !p.may(sc) }):
					want = []int{403}
				case e.perSession && p.role == "technician" && owner != p.user:
					want = []int{404}
				}
				url := base + path
				if outsideAPI[e.path] {
					url = b.URL() + path
				}
				status, out := apiCall(t, hc, e.method, url, p.token, body, nil)
				cells++
				if !slices.Contains(want, status) {
					t.Errorf("%s: %s %s (session of %s): %d, want %v: %v", p.name, e.method, e.path, owner, status, want, out)
				}
			}
		}
		// Joining the screen is sessions:join, on the WebSocket.
		for _, owner := range []string{"tina", "tom"} {
			want := 200
			switch {
			case !p.may("sessions:join"):
				want = 403
			case p.role == "technician" && owner != p.user:
				want = 404
			}
			cells++
			if got := joinOutcome(t, b, p.token, newSession(owner)); got != want {
				t.Errorf("%s: join the session of %s: %d, want %d", p.name, owner, got, want)
			}
		}
	}
	t.Logf("%d cells checked", cells)

	// Watching is not ending: a supervisor's end over the viewer socket is
	// refused and the session goes on.
	id := newSession("tina")
	ws, err := b.loginViewerSocket(principals[2].token)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	hello, _ := protocol.Encode(protocol.TypeHello, id, protocol.Hello{Version: protocol.Version, Role: protocol.RoleViewer, Session: id})
	ws.WriteMessage(websocket.TextMessage, hello)
	readType(t, ws, protocol.TypeWelcome)
	end, _ := protocol.Encode(protocol.TypeEnd, id, protocol.End{})
	ws.WriteMessage(websocket.TextMessage, end)
	if code := errorCode(t, readType(t, ws, protocol.TypeError)); code != protocol.CodeForbidden {
		t.Errorf("supervisor ending over the socket: %s", code)
	}
	if out := mustCall("GET", "/sessions/"+id, admin, "", 200); out["state"] == "ended" {
		t.Error("a supervisor ended a session")
	}

	// A disabled account is shut out at once: its logins and its keys.
	tinaKey := principals[len(principals)-2].token
	mustCall("PATCH", "/users/tina", admin, `{"disabled":true}`, 200)
	for _, tok := range []string{principals[0].token, tinaKey} {
		if status, _ := apiCall(t, hc, "GET", base+"/sessions", tok, "", nil); status != 401 {
			t.Errorf("disabled account's credential: %d, want 401", status)
		}
	}
	if status, out := apiCall(t, hc, "POST", base+"/login", "", `{"username":"tina","password":"tina-password-1"}`, nil); status != 403 || errCode(out) != "account_disabled" {
		t.Errorf("disabled account logs in: %d %v", status, out)
	}
	// The last admin cannot lock everyone out.
	if status, out := apiCall(t, hc, "PATCH", base+"/users/admin", admin, `{"disabled":true}`, nil); status != 409 || errCode(out) != "last_admin" {
		t.Errorf("disabling the last admin: %d %v", status, out)
	}
}

// joinOutcome says how the viewer endpoint answers token for session id:
// 200 welcomed, 403 refused at the door, 404 told there is no such session.
func joinOutcome(t *testing.T, b *broker, token, id string) int {
	t.Helper()
	u, _ := dial.BrokerURL(b.URL())
	tlsCfg, _ := dial.TLSConfig(b.CAFile())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := dial.WebSocket(ctx, u, "/ws/viewer", tlsCfg, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		if strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "forbidden") {
			return 403
		}
		t.Fatalf("viewer WebSocket: %v", err)
	}
	defer ws.Close()
	hello, _ := protocol.Encode(protocol.TypeHello, id, protocol.Hello{Version: protocol.Version, Role: protocol.RoleViewer, Session: id})
	ws.WriteMessage(websocket.TextMessage, hello)
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("viewer WebSocket: %v", err)
	}
	env, _ := protocol.Decode(data)
	switch {
	case env.Type == protocol.TypeWelcome:
		return 200
	case env.Type == protocol.TypeError && errorCode(t, env) == protocol.CodeNotFound:
		return 404
	}
	t.Fatalf("viewer got %s", data)
	return 0
}

// TestAPIKeyCannotGrantMoreThanItHolds: an API key that may manage
// accounts makes keys only within its own scopes, for its own account or
// another's: a key with users:admin alone cannot mint a key with every
// scope, nor one for another admin that holds more than it does.
func TestAPIKeyCannotGrantMoreThanItHolds(t *testing.T) {
	b := startBroker(t)
	hc := newSpecChecker(t, b).client()
	base := b.URL() + "/api/v1"
	ctx := context.Background()
	for _, u := range []struct{ name, role string }{{"ada", "admin"}, {"tina", "technician"}} {
		if err := b.CreateUser(ctx, u.name, u.name+"-password-1", u.role); err != nil {
			t.Fatal(err)
		}
	}
	newKey := func(token, body string) (int, map[string]any) {
		t.Helper()
		return apiCall(t, hc, "POST", base+"/keys", token, body, nil)
	}
	status, out := newKey(b.admin.APIKey, `{"name":"account sync","scopes":["users:admin"]}`)
	if status != 201 {
		t.Fatalf("admin creates a users:admin key: %d %v", status, out)
	}
	sync := out["key"].(string)
	every := `["sessions:create","sessions:read","sessions:write","sessions:join","recordings:read","webhooks:admin","users:admin"]`
	for _, c := range []struct{ what, body string }{
		{"every scope for itself", `{"name":"all of it","scopes":` + every + `}`},
		{"every scope for another admin", `{"name":"all of ada","username":"ada","scopes":` + every + `}`},
		{"one scope it lacks for another admin", `{"name":"ada's webhooks","username":"ada","scopes":["webhooks:admin"]}`},
		{"a scope it lacks for a technician", `{"name":"tina's reader","username":"tina","scopes":["sessions:read"]}`},
	} {
		if status, out := newKey(sync, c.body); status != 403 || errCode(out) != "forbidden" {
			t.Errorf("a users:admin key asks for %s: %d %v, want 403 forbidden", c.what, status, out)
		}
	}
	// Within its own scopes it still makes keys, for itself and others.
	if status, out := newKey(sync, `{"name":"second sync","scopes":["users:admin"]}`); status != 201 {
		t.Errorf("a users:admin key makes another users:admin key: %d %v", status, out)
	}
	status, out = newKey(b.admin.APIKey, `{"name":"ticket bridge","scopes":["users:admin","sessions:read"]}`)
	if status != 201 {
		t.Fatalf("admin creates a key: %d %v", status, out)
	}
	if status, out := newKey(out["key"].(string), `{"name":"tina's reader","username":"tina","scopes":["sessions:read"]}`); status != 201 {
		t.Errorf("a key with users:admin and sessions:read makes tina a reader: %d %v", status, out)
	}
	// No key with more than users:admin came out of it.
	_, list := apiCall(t, hc, "GET", base+"/keys", b.admin.APIKey, "", nil)
	for _, k := range list["keys"].([]any) {
		k := k.(map[string]any)
		if name := k["name"].(string); name != "initial admin key" && name != "ticket bridge" && len(k["scopes"].([]any)) > 1 {
			t.Errorf("key %q holds %v", name, k["scopes"])
		}
	}
}

// TestAPIKeyCannotMakeAnAccountMoreThanItself: a key that may manage
// accounts cannot get round the rule for keys with an account: it cannot
// create an admin, promote a technician to admin, or reset an admin (whose
// new password it would be shown), and so sign in with every scope. A key
// holding every scope a role holds still manages accounts of that role.
func TestAPIKeyCannotMakeAnAccountMoreThanItself(t *testing.T) {
	b := startBroker(t)
	hc := newSpecChecker(t, b).client()
	base := b.URL() + "/api/v1"
	ctx := context.Background()
	if err := b.CreateUser(ctx, "tina", "tina-password-1", "technician"); err != nil {
		t.Fatal(err)
	}
	newKey := func(name, scopes string) string {
		t.Helper()
		status, out := apiCall(t, hc, "POST", base+"/keys", b.admin.APIKey, `{"name":"`+name+`","scopes":`+scopes+`}`, nil)
		if status != 201 {
			t.Fatalf("admin creates a key with %s: %d %v", scopes, status, out)
		}
		return out["key"].(string)
	}
	sync := newKey("account sync", `["users:admin"]`)
	for _, c := range []struct{ what, method, path, body string }{
		{"creates an admin", "POST", "/users", `{"username":"mallory","role":"admin","password":"mallory-password-1"}`},
		{"creates a technician", "POST", "/users", `{"username":"tim","role":"technician"}`},
		{"promotes tina to admin", "PATCH", "/users/tina", `{"role":"admin"}`},
		{"resets the admin", "POST", "/users/admin/reset", ""},
		{"resets tina", "POST", "/users/tina/reset", ""},
	} {
		status, out := apiCall(t, hc, c.method, base+c.path, sync, c.body, nil)
		e, _ := out["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if status != 403 || errCode(out) != "forbidden" || !strings.Contains(msg, "lacks the") {
			t.Errorf("a users:admin key %s: %d %v, want 403 forbidden saying which scope it lacks", c.what, status, out)
		}
	}
	// Nothing changed: no mallory, tina a technician, the admin's password
	// as it was.
	if status, out := apiCall(t, hc, "POST", base+"/login", "", `{"username":"mallory","password":"mallory-password-1"}`, nil); status != 401 {
		t.Errorf("mallory signs in: %d %v", status, out)
	}
	_, list := apiCall(t, hc, "GET", base+"/users", b.admin.APIKey, "", nil)
	for _, u := range list["users"].([]any) {
		u := u.(map[string]any)
		if u["username"] == "mallory" || u["username"] == "tim" || u["username"] == "tina" && u["role"] != "technician" {
			t.Errorf("account after the refusals: %v", u)
		}
	}
	if status, out := apiCall(t, hc, "POST", base+"/login", "", `{"username":"admin","password":"`+b.admin.Password+`"}`, nil); status != 200 {
		t.Errorf("the admin signs in with their own password after the refused reset: %d %v", status, out)
	}

	// A key holding a technician's scopes besides users:admin manages
	// technicians, still no admin.
	techSync := newKey("technician sync", `["users:admin","sessions:create","sessions:read","sessions:write","sessions:join","recordings:read"]`)
	if status, out := apiCall(t, hc, "POST", base+"/users", techSync, `{"username":"tim","role":"technician"}`, nil); status != 201 {
		t.Errorf("a key with the technician's scopes creates a technician: %d %v", status, out)
	}
	if status, out := apiCall(t, hc, "POST", base+"/users/tina/reset", techSync, "", nil); status != 200 {
		t.Errorf("a key with the technician's scopes resets a technician: %d %v", status, out)
	}
	if status, out := apiCall(t, hc, "PATCH", base+"/users/tim", techSync, `{"role":"admin"}`, nil); status != 403 || errCode(out) != "forbidden" {
		t.Errorf("a key without webhooks:admin promotes tim to admin: %d %v", status, out)
	}
	// A key with every scope, or a console login of an admin, does it all.
	if status, out := apiCall(t, hc, "PATCH", base+"/users/tim", b.admin.APIKey, `{"role":"admin"}`, nil); status != 200 {
		t.Errorf("the admin's key promotes tim: %d %v", status, out)
	}
	login := b.loginToken(t, "admin", b.admin.Password)
	if status, out := apiCall(t, hc, "POST", base+"/users", login, `{"username":"ada","role":"admin"}`, nil); status != 201 {
		t.Errorf("the admin's login creates an admin: %d %v", status, out)
	}
}

// TestAccountChangesNameTheKey: an integration's API key acts as an
// admin's account; the broker's log, the only record of who changed
// accounts, keys and settings, names the key besides the account, so that
// its changes do not read as the admin's own, and names both when a key
// is refused an account it may not make.
func TestAccountChangesNameTheKey(t *testing.T) {
	b, log := startBrokerLogging(t)
	hc := newSpecChecker(t, b).client()
	base := b.URL() + "/api/v1"
	status, out := apiCall(t, hc, "POST", base+"/keys", b.admin.APIKey, `{"name":"account sync","scopes":["users:admin"]}`, nil)
	if status != 201 {
		t.Fatalf("admin creates a key: %d %v", status, out)
	}
	sync, syncID := out["key"].(string), out["id"].(string)
	initial := `by="admin (API key `
	logged(t, log, `msg="API key created"`, "key="+syncID, "scopes=users:admin", initial)

	byKey := `by="admin (API key ` + syncID + `)"`
	if status, out := apiCall(t, hc, "POST", base+"/keys", sync, `{"name":"second sync","scopes":["users:admin"]}`, nil); status != 201 {
		t.Fatalf("the key makes a key: %d %v", status, out)
	}
	logged(t, log, `msg="API key created"`, byKey)
	apiCall(t, hc, "PUT", base+"/settings", sync, `{"totp_required_roles":["admin"]}`, nil)
	logged(t, log, `msg="settings changed"`, byKey)
	apiCall(t, hc, "POST", base+"/users", sync, `{"username":"mallory","role":"admin"}`, nil)
	logged(t, log, `msg="account change refused`, "scope=", byKey)

	// A person's own login is logged as that person.
	apiCall(t, hc, "PUT", base+"/settings", b.admin.APIKey, `{"totp_required_roles":[]}`, nil)
	login := b.loginToken(t, "admin", b.admin.Password)
	if status, out := apiCall(t, hc, "POST", base+"/users", login, `{"username":"ada","role":"admin"}`, nil); status != 201 {
		t.Fatalf("the admin creates ada: %d %v", status, out)
	}
	logged(t, log, `msg="account created"`, "user=ada", "by=admin")
}
