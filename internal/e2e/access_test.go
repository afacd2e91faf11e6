package e2e

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// TestWithdrawnAccessEndsLiveConnections: an admin who revokes an API key
// or disables an account cuts what it is doing at once, not only its next
// call: its live connections end, the user's grants to them go, and the
// session goes on for the others.
func TestWithdrawnAccessEndsLiveConnections(t *testing.T) {
	// Mostly waiting for the broker and the user's computer to answer: it
	// runs beside the other tests that wait.
	t.Parallel()
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, j, host := askedSession(t, ctx, b, display)
	allowView(t, ctx, j, host)
	lee := colleague(t, ctx, b, c, j.ID)
	hc := b.httpClient(t)
	api := b.URL() + "/api/v1"
	// newKey gives lee an API key and a client that uses it.
	newKey := func(name string) (*client.Client, string) {
		t.Helper()
		return b.keyClient(t, `{"name":"`+name+`","username":"lee","scopes":["sessions:read","sessions:join"]}`)
	}
	cut := func(jn *client.Joined, want string) {
		t.Helper()
		turnedAway(t, jn, fmt.Sprintf("the connection (%d frames so far), which should end with %q,", jn.Frames(), want))
		if got := jn.EndReason(); got != want {
			t.Fatalf("told %q, want %q", got, want)
		}
	}

	script, key := newKey("lee's script")
	byKey := joinAsked(t, ctx, script, j.ID, host, 2)
	allowView(t, ctx, byKey, host)
	b.revokeKey(t, key)
	cut(byKey, "The API key you connected with was revoked.")
	// What the user allowed the key's connection is not kept for lee's
	// return: a new connection is asked afresh.
	byLogin := joinAsked(t, ctx, lee, j.ID, host, 3)
	allowView(t, ctx, byLogin, host)

	// Another key's connection while lee's login is here is lee again, and
	// not asked about; revoking that key cuts it alone.
	script, key = newKey("lee's other script")
	byKey, err := script.Join(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { byKey.Close() })
	if _, err := byKey.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, protocol.PermView) }); err != nil {
		t.Fatal(err)
	}
	// The account is disabled right after, while the key's connection may
	// still be winding down on the broker: each connection is cut once,
	// for its own reason (the login by the disable, not the revoke).
	b.revokeKey(t, key)
	if status, out := apiCall(t, hc, "PATCH", api+"/users/lee", b.admin.APIKey, `{"disabled":true}`, nil); status != 200 {
		t.Fatalf("disable: %d %v", status, out)
	}
	cut(byKey, "The API key you connected with was revoked.")
	cut(byLogin, "An administrator disabled your account.")

	// The user's computer no longer shares anything with lee; the admin
	// still sees the screen.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		shown := host.stdout.String()
		host.typeLine(t, "status")
		out := host.waitOutput(t, "admin (admin)", strings.Count(shown, "admin (admin)")+1, 5*time.Second)[len(shown):]
		if !strings.Contains(out, "lee") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host still shares with lee:\n%s", out)
		}
	}
	frames := j.Frames()
	if _, err := j.Screenshot(ctx); err != nil || j.Frames() <= frames {
		t.Fatalf("the admin's view stopped too: %v", err)
	}
	var disconnected int
	for _, e := range events(t, ctx, b, j.ID) {
		if e == "viewer.disconnected" {
			disconnected++
		}
	}
	if disconnected != 3 {
		t.Fatalf("%d viewer.disconnected events, want 3: %v", disconnected, events(t, ctx, b, j.ID))
	}
	if n := strings.Count(host.stdout.String(), "Allow? "); n != 3 {
		t.Fatalf("the user was asked %d times, want 3 (the admin, lee's first key, lee's login)", n)
	}
}

// TestResetForgetsDepartedTechnician: a technician who left comes back
// within minutes without a question (a reload, the next command); but once
// an admin reset their account (the password may have leaked) whoever
// signs in with the new one is asked again, even though they had already
// left when the reset came.
func TestResetForgetsDepartedTechnician(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, j, host := askedSession(t, ctx, b, display)
	allowView(t, ctx, j, host)
	lee := colleague(t, ctx, b, c, j.ID)
	first := joinAsked(t, ctx, lee, j.ID, host, 2)
	allowView(t, ctx, first, host)
	gone := func(jn *client.Joined) {
		t.Helper()
		jn.Close()
		shown := host.stdout.String()
		waitFor(t, 10*time.Second, func() bool {
			for _, line := range strings.Split(host.stdout.String()[len(shown):], "\n") {
				if strings.HasPrefix(line, "Shared: admin (admin)") && !strings.Contains(line, "lee") {
					return true
				}
			}
			return false
		})
	}
	gone(first)
	back, err := lee.Join(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close() })
	if _, err := back.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, protocol.PermView) }); err != nil {
		t.Fatalf("lee coming back: %v", err)
	}
	gone(back)

	status, out := apiCall(t, b.httpClient(t), "POST", b.URL()+"/api/v1/users/lee/reset", b.admin.APIKey, "", nil)
	if status != 200 {
		t.Fatalf("reset: %d %v", status, out)
	}
	again := b.login(t, ctx, "lee", out["password"].(string))
	allowView(t, ctx, joinAsked(t, ctx, again, j.ID, host, 3), host)
	if n := strings.Count(host.stdout.String(), "Allow? "); n != 3 {
		t.Fatalf("the user was asked %d times, want 3 (the admin, lee, lee after the reset)", n)
	}
}

// TestAdminEndsAnotherTechniciansSession: the trail says who created a
// session for whom, and when an admin ends a session someone else works,
// the user and the trail are told an administrator did, not "the
// technician".
func TestAdminEndsAnotherTechniciansSession(t *testing.T) {
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.CreateUser(ctx, "lee", "l3-expert-password", "technician"); err != nil {
		t.Fatal(err)
	}
	hc := b.httpClient(t)
	api := b.URL() + "/api/v1"
	status, sess := apiCall(t, hc, "POST", api+"/sessions", b.admin.APIKey, `{"ticket":{"id":"INC-77"},"technician":"lee"}`, nil)
	if status != 201 {
		t.Fatalf("create: %d %v", status, sess)
	}
	// While it waits, it says until when the user can join.
	var got struct {
		State         string    `json:"state"`
		CodeExpiresAt time.Time `json:"code_expires_at"`
	}
	getJSON(t, ctx, b, api+"/sessions/"+sess["id"].(string), &got)
	if got.State != "waiting" || time.Until(got.CodeExpiresAt) < 9*time.Minute {
		t.Fatalf("waiting session %+v: want the code's expiry about 10 minutes ahead", got)
	}
	// The trail says who made the session, and for whom.
	var trail struct {
		Events []struct {
			Actor, Type string
			Detail      map[string]any
		}
	}
	getJSON(t, ctx, b, api+"/sessions/"+sess["id"].(string)+"/events", &trail)
	if len(trail.Events) != 1 || trail.Events[0].Type != "session.created" || trail.Events[0].Actor != "admin" || trail.Events[0].Detail["technician"] != "lee" {
		t.Fatalf("trail %+v, want session.created by admin for lee", trail.Events)
	}
	status, out := apiCall(t, hc, "POST", api+"/sessions/"+sess["id"].(string)+"/end", b.admin.APIKey, "", nil)
	if want := "An administrator (admin) ended the session."; status != 200 || out["end_reason"] != want {
		t.Fatalf("end: %d %v, want end_reason %q", status, out, want)
	}
}

// TestFirstStartStoppedEarly: a first start that stops on a port in use
// has written the admin's login already; the next start says where it is.
func TestFirstStartStoppedEarly(t *testing.T) {
	// Mostly waiting for a broker to start: it runs beside the other tests
	// that wait.
	t.Parallel()
	bin := xtest.Build(t, "./broker")
	data := t.TempDir()
	busy, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := freeTCPPort(t)
	out, err := exec.Command(bin, "-addr", fmt.Sprintf("127.0.0.1:%d", port), "-udp", fmt.Sprint(busy.LocalAddr().(*net.UDPAddr).Port), "-data", data).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "address already in use") {
		t.Fatalf("a broker on a UDP port in use: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", fmt.Sprintf("127.0.0.1:%d", port), "-udp", fmt.Sprint(freeUDPPort(t)), "-data", data)
	var stdout syncBuffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitFor(t, 20*time.Second, func() bool { return strings.Contains(stdout.String(), "Console:") })
	want := "The first admin login and API key are in " + filepath.Join(data, server.InitialAdminFile)
	if !strings.Contains(stdout.String(), want) {
		t.Fatalf("the second start does not say where the admin login is:\n%s", stdout.String())
	}
}

// TestTwoFactorRequirementEndsLiveLogins: when an admin requires
// two-factor authentication of a role, the live session connections made
// with the console logins of that role's accounts without it end at once,
// with the reason, as their other requests are refused; the connections
// of API keys (no sign-in to protect) and of other roles go on.
func TestTwoFactorRequirementEndsLiveLogins(t *testing.T) {
	t.Parallel()
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, j, host := askedSession(t, ctx, b, display)
	allowView(t, ctx, j, host)
	lee := colleague(t, ctx, b, c, j.ID)
	byLogin := joinAsked(t, ctx, lee, j.ID, host, 2)
	allowView(t, ctx, byLogin, host)
	script, _ := b.keyClient(t, `{"name":"lee's script","username":"lee","scopes":["sessions:read","sessions:join"]}`)
	byKey, err := script.Join(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { byKey.Close() })
	if _, err := byKey.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, protocol.PermView) }); err != nil {
		t.Fatal(err)
	}

	status, out := apiCall(t, b.httpClient(t), "PUT", b.URL()+"/api/v1/settings", b.admin.APIKey, `{"totp_required_roles":["technician"]}`, nil)
	if status != 200 {
		t.Fatalf("require two-factor of technicians: %d %v", status, out)
	}
	turnedAway(t, byLogin, "lee's signed-in connection, whose role now requires two-factor,")
	if got, want := byLogin.EndReason(), "Your role now requires two-factor authentication: set it up in the console (Account security), then join again."; got != want {
		t.Fatalf("told %q, want %q", got, want)
	}
	time.Sleep(time.Second)
	for name, jn := range map[string]*client.Joined{"lee's key": byKey, "the admin": j} {
		select {
		case <-jn.Done():
			t.Errorf("%s's connection ended too: %q", name, jn.EndReason())
		default:
		}
	}
	if _, err := lee.Join(ctx, j.ID); err == nil {
		t.Error("lee joined again with the login that may only enrol")
	}
}
