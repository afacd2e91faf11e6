package e2e

import (
	"slices"
	"strings"
	"testing"
)

// TestAPIBadInput: every request the API refuses gets a 4xx with a stable
// code and says which fields are wrong; nothing is created or changed.
func TestAPIBadInput(t *testing.T) {
	b := startBroker(t)
	hc := newSpecChecker(t, b).client()
	api := b.URL() + "/api/v1"
	admin := b.admin.APIKey
	if status, out := apiCall(t, hc, "POST", api+"/users", admin, `{"username":"tina","role":"technician","password":"tina-password-1"}`, nil); status != 201 {
		t.Fatalf("create tina: %d %v", status, out)
	}
	long := strings.Repeat("x", 3000)
	for _, c := range []struct {
		method, path, body string
		status             int
		code               string
		fields             []string // the fields named, in order
	}{
		{"POST", "/sessions", `{"ticket":{"system":"service now","id":"INC-1","url":"javascript:alert(1)","title":"` + long + `"}}`, 400, "invalid_request", []string{"ticket.system", "ticket.url", "ticket.title"}},
		{"POST", "/sessions", `{"ticket":{"id":"","title":"orphan title"}}`, 400, "ticket_required", []string{"ticket.id"}},
		// A ticket given without its reference must not make a session for no ticket.
		{"POST", "/sessions", `{"ticket":{"id":"   "}}`, 400, "ticket_required", []string{"ticket.id"}},
		{"POST", "/sessions", `{"ticket":{"id":""}}`, 400, "ticket_required", []string{"ticket.id"}},
		{"POST", "/sessions", `null`, 400, "invalid_json", nil},
		{"POST", "/sessions/claim", `{"code":"123456789","ticket":{"id":" "}}`, 400, "ticket_required", []string{"ticket.id"}},
		{"POST", "/sessions/s_missing/end", `null`, 400, "invalid_json", nil},
		{"POST", "/sessions", `{"ticket":{"id":"INC-\u0007"}}`, 400, "invalid_ticket", []string{"ticket.id"}},
		// A direction mark makes the ticket read otherwise in the user's consent question.
		{"POST", "/sessions", `{"ticket":{"id":"INC-7\u202e21-CNI"}}`, 400, "invalid_ticket", []string{"ticket.id"}},
		{"POST", "/sessions", `{"technician":"nobody"}`, 400, "invalid_technician", []string{"technician"}},
		{"POST", "/sessions", `{"code_ttl_seconds":999999,"permissions":["view","view"]}`, 400, "invalid_request", []string{"code_ttl_seconds", "permissions"}},
		{"POST", "/sessions", `{"ticket":{"id":"INC-1"},"code_ttl_seconds":0}`, 400, "invalid_code_ttl", []string{"code_ttl_seconds"}},
		{"POST", "/sessions", `{"ticket":{"id":"INC-1"},"permissions":[]}`, 400, "invalid_permissions", []string{"permissions"}},
		{"POST", "/sessions", `{"ticket":{"id":"INC-1"},"extra":true}`, 400, "invalid_json", nil},
		{"POST", "/sessions", `{"ticket":"INC-1"}`, 400, "invalid_json", nil},
		{"POST", "/sessions", `{"ticket":{"id":"` + strings.Repeat("y", 70000) + `"}}`, 413, "body_too_large", nil},
		{"POST", "/sessions", `{"ticket":{"id":"INC-1"}} garbage`, 400, "invalid_json", nil},
		{"POST", "/sessions", `{"ticket":{"id":"INC-1"}}{"ticket":{"id":"INC-2"}}`, 400, "invalid_json", nil},
		{"POST", "/sessions", `{"ticket":{"id":"INC-1"}}` + strings.Repeat(" junk", 1<<20), 413, "body_too_large", nil},
		{"POST", "/sessions/claim", `{"code":"123456789","ticket":{"id":"INC-1"}} [1]`, 400, "invalid_json", nil},
		{"POST", "/sessions/claim", `{}`, 400, "invalid_request", []string{"code", "ticket.id"}},
		{"POST", "/sessions/claim", `{"code":"123456789","ticket":{"id":"INC-1"},"permissions":[]}`, 400, "invalid_permissions", []string{"permissions"}},
		{"POST", "/sessions/claim", `{"code":"12345678a","ticket":{"id":"INC-1"},"permissions":["root"]}`, 400, "invalid_request", []string{"code", "permissions"}},
		{"GET", "/sessions?state=lost&limit=0&since=monday&colour=red", "", 400, "invalid_request", []string{"colour", "state", "since", "limit"}},
		{"GET", "/sessions?technician=nobody", "", 400, "invalid_technician", []string{"technician"}},
		{"GET", "/sessions?after=s_nosuchsession", "", 400, "invalid_after", []string{"after"}},
		{"GET", "/recordings?after=s_nosuchsession", "", 400, "invalid_after", []string{"after"}},
		{"GET", "/recordings?tikcet=INC-1&has=shell", "", 400, "unknown_parameter", []string{"tikcet"}},
		{"GET", "/recordings?from=monday&has=video&limit=0", "", 400, "invalid_request", []string{"from", "has", "limit"}},
		{"GET", "/recordings?to=friday", "", 400, "invalid_date", []string{"to"}},
		// The lists without filters refuse one too: "?role=technician"
		// listing every account would read as a filtered list.
		{"GET", "/users?role=technician", "", 400, "unknown_parameter", []string{"role"}},
		{"GET", "/keys?username=tina", "", 400, "unknown_parameter", []string{"username"}},
		{"GET", "/webhooks?event=session.ended", "", 400, "unknown_parameter", []string{"event"}},
		{"GET", "/audit/codes?since=monday", "", 400, "unknown_parameter", []string{"since"}},
		{"GET", "/sessions/s_missing/events?type=file.transfer", "", 400, "unknown_parameter", []string{"type"}},
		{"GET", "/recordings?ticket=INC-1&ticket=INC-2&foo=1", "", 400, "invalid_request", []string{"ticket", "foo"}},
		{"POST", "/users", `{"username":"","role":"","password":"short"}`, 400, "invalid_request", []string{"username", "role", "password"}},
		{"POST", "/users", `{"username":"tina","role":"technician"}`, 409, "username_taken", nil},
		{"PATCH", "/users/tina", `{"role":"owner"}`, 400, "invalid_role", []string{"role"}},
		{"PATCH", "/users/admin", `{"role":"technician"}`, 409, "last_admin", nil},
		{"POST", "/keys", `{"name":"","scopes":[]}`, 400, "invalid_request", []string{"name", "scopes"}},
		{"POST", "/keys", `{"name":"k","scopes":["users:admin"],"username":"tina"}`, 400, "invalid_scopes", []string{"scopes"}},
		{"POST", "/keys", `{"name":"k","scopes":["sessions:read","sessions:read"]}`, 400, "invalid_scopes", []string{"scopes"}},
		{"PUT", "/settings", `{}`, 400, "invalid_roles", []string{"totp_required_roles"}},
		{"PUT", "/settings", `{"totp_required_roles":["owner"]}`, 400, "invalid_roles", []string{"totp_required_roles"}},
		{"POST", "/me/password", `{"current_password":"wrong","new_password":"a-long-enough-one"}`, 400, "bad_credentials", []string{"current_password"}},
		{"POST", "/me/totp/confirm", `{"code":"123456"}`, 400, "bad_totp", []string{"code"}},
		{"POST", "/login", `{"username":"","password":""}`, 400, "invalid_request", []string{"username", "password"}},
	} {
		status, out := apiCall(t, hc, c.method, api+c.path, admin, c.body, nil)
		if status != c.status || errCode(out) != c.code {
			t.Errorf("%s %s %.60s: %d %s, want %d %s (%v)", c.method, c.path, c.body, status, errCode(out), c.status, c.code, out)
			continue
		}
		var named []string
		if e, ok := out["error"].(map[string]any); ok {
			if e["message"] == "" {
				t.Errorf("%s %s: no message", c.method, c.path)
			}
			// Every refusal about fields names them, also a single one.
			fs, _ := e["fields"].([]any)
			for _, f := range fs {
				named = append(named, f.(map[string]any)["field"].(string))
			}
		}
		if c.fields != nil && !slices.Equal(named, c.fields) {
			t.Errorf("%s %s %.60s: fields %v, want %v", c.method, c.path, c.body, named, c.fields)
		}
	}
	if status, out := apiCall(t, hc, "POST", api+"/sessions", admin, `ticket=INC-1`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); status != 415 || errCode(out) != "unsupported_media_type" {
		t.Errorf("a form post: %d %v", status, out)
	}
	// A body that is not the request's JSON object is refused in words, never
	// Go's type names, naming the field where the problem is one field's.
	for body, field := range map[string]string{
		`[{"ticket":{"id":"INC-1"}}]`:            "",
		`"INC-1"`:                                "",
		`{"ticket":{"id":"INC-1"},"extra":true}`: "extra",
		`{"ticket":{"id":"INC-1","prio":1}}`:     "ticket.prio",
		`{"ticket":"INC-1"}`:                     "ticket",
		`{"ticket":{"id":7}}`:                    "ticket.id",
		`{"code_ttl_seconds":"600"}`:             "code_ttl_seconds",
		`{"permissions":"view"}`:                 "permissions",
	} {
		status, out := apiCall(t, hc, "POST", api+"/sessions", admin, body, nil)
		e, _ := out["error"].(map[string]any)
		msg, _ := e["message"].(string)
		fields, _ := e["fields"].([]any)
		if status != 400 || errCode(out) != "invalid_json" || msg == "" || strings.Contains(msg, "Go ") || strings.Contains(msg, "struct") {
			t.Errorf("%s: %d %v, want 400 invalid_json with a plain message", body, status, out)
		}
		if field == "" && fields != nil || field != "" && (len(fields) != 1 || fields[0].(map[string]any)["field"] != field) {
			t.Errorf("%s: fields %v, want %q named", body, fields, field)
		}
	}
	// Media types are case-insensitive and may carry a charset; a type that
	// only starts like JSON's is not JSON.
	for ct, want := range map[string]int{"APPLICATION/JSON": 400, "Application/Json; charset=UTF-8": 400, "application/jsonfoo": 415, "application/json-seq": 415} {
		if status, out := apiCall(t, hc, "POST", api+"/sessions", admin, `{"technician":"nobody"}`, map[string]string{"Content-Type": ct}); status != want {
			t.Errorf("Content-Type %s: %d %v, want %d", ct, status, out, want)
		}
	}
	// Nothing was made by the refused requests.
	_, list := apiCall(t, hc, "GET", api+"/sessions", admin, "", nil)
	if n := len(list["sessions"].([]any)); n != 0 {
		t.Errorf("%d sessions exist after refused requests", n)
	}
	_, users := apiCall(t, hc, "GET", api+"/users", admin, "", nil)
	if n := len(users["users"].([]any)); n != 2 {
		t.Errorf("%d accounts exist, want admin and tina", n)
	}
}

// TestAPIBadInputSaysWhatIsWrong: a refused field's message names the
// actual problem (a line break is not "too long"), every refusal about one
// field names it in fields, and lengths count bytes as the document says.
func TestAPIBadInputSaysWhatIsWrong(t *testing.T) {
	b := startBroker(t)
	hc := newSpecChecker(t, b).client()
	api := b.URL() + "/api/v1"
	admin := b.admin.APIKey
	status, out := apiCall(t, hc, "POST", api+"/sessions", admin, `{"ticket":{"id":"INC-1","title":"`+strings.Repeat("é", 128)+`"}}`, nil)
	if status != 201 {
		t.Fatalf("a title of 128 × é (256 bytes): %d %v", status, out)
	}
	end := "/sessions/" + out["id"].(string) + "/end"
	for _, c := range []struct {
		path, body, code, field string
		says, notSays           string
	}{
		{"/sessions", `{"ticket":{"id":"INC-1\nsecond line"}}`, "invalid_ticket", "ticket.id", "one line", "at most"},
		{"/sessions", `{"ticket":{"id":"INC-1","title":"` + strings.Repeat("é", 129) + `"}}`, "invalid_ticket_title", "ticket.title", "258", ""},
		{"/sessions", `{"ticket":{"id":"INC-1","system":"ji\tra"}}`, "invalid_ticket_system", "ticket.system", "one line", "spaces"},
		{end, `{"notes":"fixed\u0001"}`, "invalid_notes", "notes", "control characters", "8 KiB"},
		{end, `{"notes":"` + strings.Repeat("n", 9000) + `"}`, "invalid_notes", "notes", "9000", ""},
		{"/keys", `{"name":"Service\nNow","scopes":["sessions:read"]}`, "invalid_name", "name", "one line", "100 bytes"},
	} {
		status, out := apiCall(t, hc, "POST", api+c.path, admin, c.body, nil)
		e, _ := out["error"].(map[string]any)
		msg, _ := e["message"].(string)
		fields, _ := e["fields"].([]any)
		if status != 400 || errCode(out) != c.code || !strings.Contains(msg, c.says) || c.notSays != "" && strings.Contains(msg, c.notSays) {
			t.Errorf("%s %.50q: %d %v, want 400 %s saying %q (not %q)", c.path, c.body, status, out, c.code, c.says, c.notSays)
			continue
		}
		if len(fields) != 1 || fields[0].(map[string]any)["field"] != c.field {
			t.Errorf("%s %.50q: fields %v, want %s named", c.path, c.body, fields, c.field)
		}
	}
	// The refused notes left the session as it was.
	if status, out := apiCall(t, hc, "POST", api+end, admin, `{"notes":"fixed"}`, nil); status != 200 {
		t.Errorf("ending with good notes: %d %v", status, out)
	}
}
