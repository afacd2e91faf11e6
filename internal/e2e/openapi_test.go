package e2e

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/tether-support/tether/broker/api"
	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
)

// specChecker is an http.RoundTripper that validates every answer of the
// real broker under /api/v1 against the OpenAPI document, and notes which
// operations answered with success.
type specChecker struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	base   http.RoundTripper

	mu      sync.Mutex
	covered map[string]bool
}

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

func newSpecChecker(t *testing.T, b *broker) *specChecker {
	t.Helper()
	doc := loadSpec(t)
	doc.Servers = openapi3.Servers{{URL: b.URL() + "/api/v1"}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, _ := dial.TLSConfig(b.CAFile())
	return &specChecker{t: t, doc: doc, router: router, base: &http.Transport{TLSClientConfig: tlsCfg}, covered: map[string]bool{}}
}

func (c *specChecker) client() *http.Client {
	return &http.Client{Transport: c, Timeout: 30 * time.Second}
}

func (c *specChecker) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.Path, "/api/v1/") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, err
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		// A documented path asked with a method it does not take answers
		// 405 naming the documented ones (GET serves HEAD too); any other
		// undocumented request 404.
		if allow := c.documentedMethods(req); allow != "" {
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != allow {
				c.t.Errorf("%s %s: the path takes %s, but it answered %d with Allow %q", req.Method, req.URL.Path, allow, resp.StatusCode, resp.Header.Get("Allow"))
			}
		} else if resp.StatusCode != 404 {
			c.t.Errorf("%s %s is not in openapi.yaml but answered %d", req.Method, req.URL.Path, resp.StatusCode)
		}
		return resp, nil
	}
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
		Status:                 resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)), Options: opts,
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		c.t.Errorf("%s %s answered %d not as documented: %v\nbody: %.400s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	if resp.StatusCode < 300 {
		c.mu.Lock()
		c.covered[route.Operation.OperationID] = true
		c.mu.Unlock()
	}
	return resp, nil
}

// documentedMethods lists the methods openapi.yaml documents for req's
// path, as an Allow header says them, or "" for a path it does not have.
func (c *specChecker) documentedMethods(req *http.Request) string {
	var out []string
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
		probe := req.Clone(req.Context())
		probe.Method = m
		if m == "HEAD" {
			probe.Method = "GET"
		}
		if _, _, err := c.router.FindRoute(probe); err == nil {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

// registeredRoutes reads the route patterns the broker's packages register
// under /api/v1 from their source: every HandleFunc or Handle call with a
// "METHOD /api/v1/..." pattern.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"../../broker/api", "../../broker/server"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			file, err := parser.ParseFile(token.NewFileSet(), f, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				lit, isLit := call.Args[0].(*ast.BasicLit)
				if !ok || !isLit || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") || lit.Kind != token.STRING {
					return true
				}
				pattern, _ := strconv.Unquote(lit.Value)
				if method, path, ok := strings.Cut(pattern, " "); ok && strings.HasPrefix(path, "/api/v1/") {
					out = append(out, method+" "+strings.TrimPrefix(path, "/api/v1"))
				}
				return true
			})
		}
	}
	return out
}

func documentedRoutes(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	return out
}

// TestOpenAPIMatchesHandlers: every documented operation is registered and
// every registered route documented; each one is served by the real
// router; and a run through every operation answers as documented.
func TestOpenAPIMatchesHandlers(t *testing.T) {
	doc := loadSpec(t)
	registered, documented := registeredRoutes(t), documentedRoutes(doc)
	if len(registered) < 20 {
		t.Fatalf("found only %d registered routes in the source: %v", len(registered), registered)
	}
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is registered but not in openapi.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(registered, d) {
			t.Errorf("openapi.yaml documents %s, which no handler serves", d)
		}
	}
	// Each documented scope is a real one.
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if sc, ok := op.Extensions["x-scope"].(string); ok && !slices.Contains(auth.AllScopes, sc) {
				t.Errorf("%s documents unknown scope %q", op.OperationID, sc)
			}
		}
	}

	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer receiver.Close()
	b := startBrokerWith(t, func(c *server.Config) { c.Webhooks.AllowLoopback = true })
	sc := newSpecChecker(t, b)
	hc := sc.client()
	base := b.URL() + "/api/v1"

	// The real router serves every documented operation: without
	// credentials each one answers 401 (or works, for the open ones), never
	// the catch-all "no such endpoint".
	for _, r := range documented {
		method, path, _ := strings.Cut(r, " ")
		path = strings.NewReplacer("{id}", "x", "{username}", "x", "{delivery}", "x").Replace(path)
		status, out := apiCall(t, hc, method, base+path, "", "", nil)
		if status == 404 && errCode(out) == "not_found" {
			t.Errorf("%s reaches no handler", r)
		}
	}

	admin := b.admin.APIKey
	call := func(method, path, token, body string, want int) map[string]any {
		t.Helper()
		status, out := apiCall(t, hc, method, base+path, token, body, nil)
		if status != want {
			t.Fatalf("%s %s: %d, want %d: %v", method, path, status, want, out)
		}
		return out
	}
	call("GET", "/openapi.yaml", "", "", 200)

	// Accounts.
	created := call("POST", "/users", admin, `{"username":"tina","role":"technician"}`, 201)
	password := created["password"].(string)
	call("POST", "/users", admin, `{"username":"Bad Name","role":"king","password":"short"}`, 400)
	call("POST", "/users", admin, `{"username":"sue","role":"supervisor","password":"sue-password-12"}`, 201)
	call("GET", "/users", admin, "", 200)
	call("PATCH", "/users/sue", admin, `{"disabled":true}`, 200)
	call("PATCH", "/users/nobody", admin, `{"disabled":true}`, 404)
	reset := call("POST", "/users/sue/reset", admin, "", 200)
	if reset["password"] == "" {
		t.Error("reset shows no new password")
	}
	login := call("POST", "/login", "", `{"username":"tina","password":"`+password+`"}`, 200)
	tina := login["token"].(string)
	call("POST", "/login", "", `{"username":"tina","password":"wrong"}`, 401)
	call("GET", "/me", tina, "", 200)
	call("POST", "/me/password", tina, `{"current_password":"`+password+`","new_password":"short"}`, 400)
	call("POST", "/me/password", tina, `{"current_password":"`+password+`","new_password":"tina-new-password-1"}`, 204)
	call("POST", "/me/totp", tina, `{"password":"wrong"}`, 400)
	enrol := call("POST", "/me/totp", tina, `{"password":"tina-new-password-1"}`, 200)
	code, _ := auth.TOTPCode(enrol["secret"].(string), b.now())
	call("POST", "/me/totp/confirm", tina, `{"code":"000000"}`, 400)
	call("POST", "/me/totp/confirm", tina, `{"code":"`+code+`"}`, 200)
	call("POST", "/me/totp/recovery-codes", tina, `{"password":"tina-new-password-1","code":"000000"}`, 400)
	b.advance(30 * time.Second)
	code, _ = auth.TOTPCode(enrol["secret"].(string), b.now())
	codes := call("POST", "/me/totp/recovery-codes", tina, `{"password":"tina-new-password-1","code":"`+code+`"}`, 200)["recovery_codes"].([]any)
	call("GET", "/me", tina, "", 200)
	call("DELETE", "/me/totp", tina, `{"password":"tina-new-password-1","code":"`+codes[0].(string)+`"}`, 204)
	call("POST", "/me/totp/recovery-codes", tina, `{"password":"tina-new-password-1","code":"`+codes[1].(string)+`"}`, 409)

	// API keys.
	key := call("POST", "/keys", admin, `{"name":"ServiceNow","scopes":["sessions:create","sessions:read"]}`, 201)
	call("POST", "/keys", admin, `{"name":"x","scopes":["users:admin"],"username":"tina"}`, 400)
	call("GET", "/keys", admin, "", 200)
	call("DELETE", "/keys/"+key["id"].(string), admin, "", 200)
	call("DELETE", "/keys/key_missing", admin, "", 404)
	call("GET", "/settings", admin, "", 200)
	call("PUT", "/settings", admin, `{"totp_required_roles":["admin","admin"]}`, 400)
	call("PUT", "/settings", admin, `{"totp_required_roles":[]}`, 200)

	// Webhooks.
	hook := call("POST", "/webhooks", admin, `{"url":"`+receiver.URL+`/hook","events":["session.created"]}`, 201)
	hookID := hook["id"].(string)
	call("GET", "/webhooks", admin, "", 200)
	call("GET", "/webhooks/"+hookID, admin, "", 200)
	call("PATCH", "/webhooks/"+hookID, admin, `{"description":"ticket system"}`, 200)

	// Sessions.
	s := call("POST", "/sessions", admin, `{"ticket":{"system":"servicenow","id":"INC-7","url":"https://sn.example.com/INC-7","title":"Outlook"},"technician":"tina","permissions":["view"],"code_ttl_seconds":300}`, 201)
	id := s["id"].(string)
	call("POST", "/sessions", admin, `{"ticket":{"id":"","url":"nope"},"technician":"sue","code_ttl_seconds":1}`, 400)
	call("GET", "/sessions?ticket=INC-7&technician=tina&state=waiting&since=2020-01-01T00:00:00Z&limit=5", admin, "", 200)
	call("GET", "/sessions?state=sleeping&since=yesterday", admin, "", 400)
	call("GET", "/sessions?after="+id+"&limit=5", admin, "", 200)
	call("GET", "/sessions/"+id, tina, "", 200)
	call("GET", "/sessions/"+id+"/events", tina, "", 200)
	call("POST", "/sessions/"+id+"/invite", tina, `{"username":"admin"}`, 200)
	call("POST", "/sessions/"+id+"/handover", tina, `{"username":"admin"}`, 200)
	call("POST", "/sessions/"+id+"/end", admin, `{"notes":"fixed"}`, 200)
	call("POST", "/sessions/claim", tina, `{"code":"123456789","ticket":{"id":"INC-8"}}`, 404)
	claimable := hostAsksForCode(t, b)
	call("POST", "/sessions/claim", tina, `{"code":"`+claimable+`","ticket":{"id":"INC-8"}}`, 201)

	deadline := time.Now().Add(10 * time.Second)
	var deliveryID string
	for deliveryID == "" {
		out := call("GET", "/webhooks/"+hookID+"/deliveries", admin, "", 200)
		for _, d := range out["deliveries"].([]any) {
			if d.(map[string]any)["state"] == "succeeded" {
				deliveryID = d.(map[string]any)["id"].(string)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery succeeded: %v", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	call("POST", "/webhooks/"+hookID+"/deliveries/"+deliveryID+"/redeliver", admin, "", 202)
	call("DELETE", "/webhooks/"+hookID, admin, "", 204)
	call("GET", "/audit/codes", admin, "", 200)
	call("POST", "/logout", tina, "", 204)

	// Operations exercised elsewhere (e.g. recordings, which need a
	// recorded session) name their test in x-exercised-by; it must exist
	// and use the spec checker.
	for _, item := range sc.doc.Paths.Map() {
		for _, op := range item.Operations() {
			if sc.covered[op.OperationID] {
				continue
			}
			if name, ok := op.Extensions["x-exercised-by"].(string); ok {
				if !testUsesSpecChecker(t, name) {
					t.Errorf("operation %s names %s in x-exercised-by, which is not a test here validating with newSpecChecker", op.OperationID, name)
				}
				continue
			}
			t.Errorf("operation %s never answered with success in this test", op.OperationID)
		}
	}
}

// TestOpenAPILengthsInBytes: the broker counts every length limit in
// bytes of UTF-8, while JSON Schema's maxLength counts characters, so every
// field with a maxLength must say that it is in bytes: an integrator who
// reads 256 must not send 129 accented letters and be refused.
func TestOpenAPILengthsInBytes(t *testing.T) {
	doc := loadSpec(t)
	seen := map[*openapi3.Schema]bool{}
	var check func(where, desc string, ref *openapi3.SchemaRef)
	check = func(where, desc string, ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if s.MaxLength != nil && !strings.Contains(desc+" "+s.Description, "bytes") {
			t.Errorf("%s: maxLength %d does not say it counts bytes", where, *s.MaxLength)
		}
		for name, p := range s.Properties {
			check(where+"."+name, "", p)
		}
		check(where+"[]", "", s.Items)
		for _, a := range s.AllOf {
			check(where, s.Description, a)
		}
	}
	for name, s := range doc.Components.Schemas {
		check(name, "", s)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			for _, p := range append(item.Parameters, op.Parameters...) {
				check(where+" ?"+p.Value.Name, p.Value.Description, p.Value.Schema)
			}
			if op.RequestBody != nil {
				for _, mt := range op.RequestBody.Value.Content {
					check(where+" body", "", mt.Schema)
				}
			}
		}
	}
}

// testUsesSpecChecker reports whether this package has a test function
// name that calls newSpecChecker.
func testUsesSpecChecker(t *testing.T, name string) bool {
	files, _ := filepath.Glob("*_test.go")
	for _, f := range files {
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Name.Name != name {
				continue
			}
			found := false
			ast.Inspect(fn, func(n ast.Node) bool {
				if id, ok := n.(*ast.Ident); ok && id.Name == "newSpecChecker" {
					found = true
				}
				return !found
			})
			return found
		}
	}
	return false
}

// hostAsksForCode connects as a host that asks the broker for a code, and
// returns it; the connection stays open until the test ends.
func hostAsksForCode(t *testing.T, b *broker) string {
	t.Helper()
	u, _ := dial.BrokerURL(b.URL())
	tlsCfg, _ := dial.TLSConfig(b.CAFile())
	ws, err := dial.WebSocket(context.Background(), u, "/ws/host", tlsCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	c := dial.NewConn(ws)
	if err := c.Send(protocol.TypeHello, "", protocol.Hello{Version: protocol.Version, Role: protocol.RoleHost, NewCode: true,
		Host: &protocol.HostInfo{Hostname: "pc-1", OS: "linux", Width: 800, Height: 600}}); err != nil {
		t.Fatal(err)
	}
	env, err := c.Read()
	if err != nil || env.Type != protocol.TypeCode {
		t.Fatalf("host asked for a code: %v %v", env, err)
	}
	var issued protocol.IssuedCode
	if err := protocol.DecodePayload(env, &issued); err != nil {
		t.Fatal(err)
	}
	return issued.Code
}
