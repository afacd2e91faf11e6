package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
)

// TestLiveObservation: a supervisor watches a running session. The user
// is asked, for view only; once allowed, the supervisor gets the picture
// but no control, the technician is told who is watching, and the host's
// terminal says the session is observed. When the supervisor leaves, the
// technician is told that too.
func TestLiveObservation(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := startBroker(t)
	if err := b.CreateUser(ctx, "sup", "correct horse battery", "supervisor"); err != nil {
		t.Fatal(err)
	}
	c := b.client(t)
	sess, err := c.CreateSession(ctx, "INC-OBS")
	if err != nil {
		t.Fatal(err)
	}
	host := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	tech, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer tech.Close()
	if _, err := tech.Screenshot(ctx); err != nil {
		t.Fatalf("no video: %v\n%s", err, host.stderr.String())
	}
	// The technician has control while the supervisor watches.
	if ok, reason, err := tech.TakeControl(ctx, true); err != nil || !ok {
		t.Fatalf("the technician could not take control: %v %q %v", ok, reason, err)
	}

	supClient := b.login(t, ctx, "sup", "correct horse battery")
	sup, err := supClient.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The user is asked to let the supervisor see, and only that.
	prompt := host.waitOutput(t, "sup (supervisor", 1, 20*time.Second)
	if !strings.Contains(prompt, "1. view") || strings.Contains(prompt[strings.LastIndex(prompt, "sup (supervisor"):], "2. control") {
		t.Errorf("the supervisor's request asks for more than view:\n%s", prompt)
	}
	p, err := sup.WaitPermissions(ctx, func(p protocol.Permissions) bool { return len(p.Granted) > 0 })
	if err != nil || !slices.Equal(p.Granted, []string{protocol.PermView}) {
		t.Fatalf("supervisor granted %v, %v; want view only", p.Granted, err)
	}
	if _, err := sup.Screenshot(ctx); err != nil {
		t.Fatalf("the supervisor sees nothing: %v", err)
	}
	if ok, reason, err := sup.TakeControl(ctx, true); err != nil || ok {
		t.Errorf("the supervisor took control: %v %q %v", ok, reason, err)
	}
	// Asking the user for more is refused before it reaches the user.
	prompts := strings.Count(host.stdout.String(), "Allow? ")
	if err := sup.RequestPermissions(protocol.PermControl); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if n := strings.Count(host.stdout.String(), "Allow? "); n != prompts {
		t.Errorf("the user was asked to let a supervisor control")
	}
	// The technician is told who watches; the host says so on its terminal.
	waitUntil(t, 10*time.Second, "the technician to be told of the observer", func() bool {
		obs := tech.Observers()
		return len(obs) == 1 && obs[0].Name == "sup" && obs[0].Role == "supervisor"
	})
	// The host's status line says who can do what: the technician all they
	// were allowed, the supervisor only to see; nothing reads as if the
	// whole session were view only.
	out := host.waitOutput(t, "sup (supervisor) is observing", 1, 10*time.Second)
	status := out[strings.LastIndex(out, "Shared: "):]
	status = strings.TrimSpace(status[:strings.IndexByte(status, '\n')])
	if want := "Shared: admin (admin) can see your screen, use your mouse and keyboard, and use your clipboard; sup (supervisor) is observing and can only see your screen."; status != want {
		t.Errorf("the host's status line with a technician in control and a supervisor watching:\n%q\nwant\n%q", status, want)
	}
	// The audit trail and the recording know it too.
	api := newAPIClient(t, b.URL(), b.CAFile(), b.admin.APIKey)
	var trail struct {
		Events []struct {
			Type  string `json:"type"`
			Actor string `json:"actor"`
		} `json:"events"`
	}
	api.call(t, "GET", "/api/v1/sessions/"+sess.ID+"/events", &trail)
	if !slices.ContainsFunc(trail.Events, func(e struct {
		Type  string `json:"type"`
		Actor string `json:"actor"`
	}) bool {
		return e.Type == "viewer.joined" && e.Actor == "sup"
	}) {
		t.Error("the supervisor's joining is not in the audit trail")
	}
	// What was refused before it reached the user was never asked.
	for _, e := range trail.Events {
		if e.Type == "permission.requested" && e.Actor == "sup" {
			t.Error("the trail says the supervisor asked the user for more")
		}
	}

	sup.Close()
	waitUntil(t, 10*time.Second, "the technician to be told the observer left", func() bool { return len(tech.Observers()) == 0 })
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
