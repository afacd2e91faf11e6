package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// askedSession creates a session, joins it as the admin and starts a host
// whose prompts the test answers. It returns once the first question is on
// the user's terminal.
func askedSession(t *testing.T, ctx context.Context, b *broker, display string) (*client.Client, *client.Joined, *hostProc) {
	t.Helper()
	c := b.client(t)
	sess, err := c.CreateSession(ctx, "INC-9")
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	host := startHostAsking(t, display, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	out := host.waitOutput(t, "Allow? ", 1, 20*time.Second)
	for _, want := range []string{"admin (admin, Acme IT) asks to connect", `ticket "INC-9"`, "1. view", "2. control", "3. clipboard"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the prompt does not say %q:\n%s", want, out)
		}
	}
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return p.Pending }); err != nil {
		t.Fatal(err)
	}
	return c, j, host
}

// joinAsked joins session id once more and waits for the user's question
// number n on the host's terminal.
func joinAsked(t *testing.T, ctx context.Context, c *client.Client, id string, host *hostProc, n int) *client.Joined {
	t.Helper()
	j, err := c.Join(ctx, id)
	if err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	t.Cleanup(func() { j.Close() })
	host.waitOutput(t, "Allow? ", n, 20*time.Second)
	return j
}

// allowView has the user allow all on the host's terminal and waits until
// j may see the screen.
func allowView(t *testing.T, ctx context.Context, j *client.Joined, host *hostProc) {
	t.Helper()
	host.typeLine(t, "all")
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, protocol.PermView) }); err != nil {
		t.Fatal(err)
	}
}

// colleague makes lee a technician, has c invite lee to session id and
// returns lee's signed-in client: a second person, whom the user is asked
// about afresh.
func colleague(t *testing.T, ctx context.Context, b *broker, c *client.Client, id string) *client.Client {
	t.Helper()
	if err := b.CreateUser(ctx, "lee", "l3-expert-password", "technician"); err != nil {
		t.Fatal(err)
	}
	if err := c.Invite(ctx, id, "lee", false); err != nil {
		t.Fatal(err)
	}
	return b.login(t, ctx, "lee", "l3-expert-password")
}

// turnedAway waits until the user's "no" (or the broker) has closed j.
func turnedAway(t *testing.T, j *client.Joined, what string) {
	t.Helper()
	select {
	case <-j.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s stayed", what)
	}
}

func has(p protocol.Permissions, perms ...string) bool {
	for _, x := range perms {
		if !slices.Contains(p.Granted, x) {
			return false
		}
	}
	return true
}

func events(t *testing.T, ctx context.Context, b *broker, id string) []string {
	t.Helper()
	u := b.URL() + "/api/v1/sessions/" + id + "/events"
	var out struct {
		Events []struct {
			Actor, Type string
			Detail      json.RawMessage
		}
	}
	getJSON(t, ctx, b, u, &out)
	var types []string
	for _, e := range out.Events {
		types = append(types, e.Type)
	}
	return types
}

// TestConsentDenied: the user says no; nothing is shown and the session
// ends for everyone with the reason. The ticket system hears that the
// technician joined and was not let in.
func TestConsentDenied(t *testing.T) {
	// Mostly waiting for the broker and the user's computer to answer: it
	// runs beside the other tests that wait.
	t.Parallel()
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	b, hc := webhookBroker(t)
	ts := newTicketSystem(t)
	register(t, b, hc, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, j, host := askedSession(t, ctx, b, display)
	host.typeLine(t, "no")
	select {
	case <-j.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end after the user declined")
	}
	if !strings.Contains(j.EndReason(), "declined") || j.Frames() != 0 {
		t.Fatalf("end reason %q, %d frames shown", j.EndReason(), j.Frames())
	}
	if code := host.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("host exit code %d", code)
	}
	// The user reads it addressed to them, not the technician's words.
	if out := host.stdout.String(); !strings.Contains(out, "Session ended: You declined.") {
		t.Errorf("the host's terminal:\n%s", out)
	}
	if ev := events(t, ctx, b, j.ID); !slices.Contains(ev, "consent.denied") || !slices.Contains(ev, "session.ended") {
		t.Fatalf("events %v", ev)
	}
	d := ts.wait(t, j.ID, "session.ended")["session.ended"].Data
	viewers, _ := d["viewers"].([]any)
	joined, _ := d["joined"].([]any)
	if viewers == nil || len(viewers) != 0 || !slices.Equal(joined, []any{"admin"}) {
		t.Errorf("session.ended says viewers %v, joined %v; want none let in, admin joined", d["viewers"], d["joined"])
	}
}

// TestCommandsWhileAsked: the commands the host lists work while a
// question is open: "pause" pauses and the question is put again, "end"
// ends the session at once, without an answer first.
func TestCommandsWhileAsked(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, j, host := askedSession(t, ctx, b, display)
	host.typeLine(t, "pause")
	// The technician is here, asking: the status does not say no one is.
	host.waitOutput(t, "PAUSED: nothing is shared until you resume. No one can see or control your computer.", 1, 5*time.Second)
	host.waitOutput(t, "Allow? ", 2, 5*time.Second)
	host.typeLine(t, "end")
	if code := host.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("host exit code %d; terminal:\n%s", code, host.stdout.String())
	}
	select {
	case <-j.Done():
		if j.EndReason() != "The user ended the session." {
			t.Errorf("the technician reads %q", j.EndReason())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the technician was not told the session ended")
	}
	out := host.stdout.String()
	for _, want := range []string{"The session is over: no answer needed.", "Session ended: You ended the session."} {
		if !strings.Contains(out, want) {
			t.Errorf("the host's terminal does not say %q:\n%s", want, out)
		}
	}
}

// TestDeclineLaterConnection: once the user has allowed a technician, a
// "no" to a later connection (each viewer command is one) turns that
// connection away and leaves the session running.
func TestDeclineLaterConnection(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, j, host := askedSession(t, ctx, b, display)
	allowView(t, ctx, j, host)
	j.Close()

	// A colleague's connection (the admin, back at once, would not be
	// asked): the user says no.
	again := joinAsked(t, ctx, colleague(t, ctx, b, c, j.ID), j.ID, host, 2)
	host.typeLine(t, "no")
	turnedAway(t, again, "the declined connection")
	// Joining again fails if the session ended with the declined connection.
	third, err := c.Join(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if _, err := third.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, protocol.PermView) }); err != nil {
		t.Fatal(err)
	}
	if ev := events(t, ctx, b, j.ID); slices.Contains(ev, "session.ended") {
		t.Fatalf("events %v", ev)
	}
}

// TestQuestionWithdrawn: a technician who leaves before the user answers
// takes the question along; the next connection's question is the one the
// user answers, at once.
func TestQuestionWithdrawn(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, j, host := askedSession(t, ctx, b, display)
	j.Close()
	host.waitOutput(t, "They left the session: no answer needed.", 1, 10*time.Second)

	again := joinAsked(t, ctx, c, j.ID, host, 2)
	allowView(t, ctx, again, host)
	if ev := events(t, ctx, b, j.ID); slices.Contains(ev, "consent.denied") || slices.Contains(ev, "session.ended") {
		t.Fatalf("events %v", ev)
	}
}

// TestExpiredCodeEndsSession: a session whose code expired before the
// user joined is over, says why, and the host is told the code expired.
func TestExpiredCodeEndsSession(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sess, err := b.client(t).CreateSession(ctx, "INC-LATE")
	if err != nil {
		t.Fatal(err)
	}
	api := newAPIClient(t, b.URL(), b.CAFile(), b.admin.APIKey)
	var got struct {
		State     string `json:"state"`
		EndReason string `json:"end_reason"`
	}
	if api.call(t, "GET", "/api/v1/sessions/"+sess.ID, &got); got.State != "waiting" {
		t.Fatalf("a fresh session is %+v", got)
	}
	b.advance(11 * time.Minute)
	// The broker ends it within a second of the expiry.
	waitFor(t, 3*time.Second, func() bool {
		return api.call(t, "GET", "/api/v1/sessions/"+sess.ID, &got) == 200 && got.State == "ended"
	})
	if !strings.Contains(got.EndReason, "code expired") {
		t.Fatalf("after its code expired the session is %+v", got)
	}
	if ev := events(t, ctx, b, sess.ID); !slices.Contains(ev, "session.ended") {
		t.Fatalf("events %v", ev)
	}
	host := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	if code := host.wait(t, 20*time.Second); code == 0 || !strings.Contains(host.stderr.String(), "expired") {
		t.Fatalf("host exit %d:\n%s", code, host.stderr.String())
	}
}

// TestConsentTimeout: no answer is no.
func TestConsentTimeout(t *testing.T) {
	// Mostly waiting for the question to time out: it runs beside the
	// other tests that wait.
	t.Parallel()
	display := xtest.StartXvfb(t, 640, 480)
	b := startBrokerWith(t, func(c *server.Config) { c.ConsentTimeout = 2 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, j, host := askedSession(t, ctx, b, display)
	select {
	case <-j.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the session did not end after the question timed out")
	}
	if !strings.Contains(j.EndReason(), "did not answer") || j.Frames() != 0 {
		t.Fatalf("end reason %q, %d frames", j.EndReason(), j.Frames())
	}
	host.waitOutput(t, "No answer: denied.", 1, 5*time.Second)
	if ev := events(t, ctx, b, j.ID); !slices.Contains(ev, "consent.timeout") {
		t.Fatalf("events %v", ev)
	}
}

// TestConsentPartialRevokeRequestPause walks one session through a partial
// grant, a mid-session request granted and one denied, a revoke, a pause
// and the user ending it, checking the remote machine each time.
func TestConsentPartialRevokeRequestPause(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	w := xtest.StartInputWitness(t, display)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, j, host := askedSession(t, ctx, b, display)
	// The sessions list says what the user allows now.
	allowedNow := func(want string) {
		t.Helper()
		s, err := c.Session(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := "<not in the session>"
		if s.Now != nil {
			got = strings.Join(s.Now.Allowed, ",")
			if s.Now.Paused {
				got += " paused"
			}
		}
		if got != want {
			t.Errorf("the session says the user allows %q now, want %q", got, want)
		}
	}

	// View only: the picture arrives, control is refused, clicks do nothing.
	host.typeLine(t, "1")
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, "view") && !p.Pending }); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, reason, err := j.TakeControl(ctx, true); err != nil || ok || !strings.Contains(reason, "not allowed control") {
		t.Fatalf("control with view only: %v %q %v", ok, reason, err)
	}
	allowedNow("view")
	mark := len(w.Lines())
	click := func() {
		send(t, ctx, j,
			protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 20, Y: 20},
			protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: false, X: 20, Y: 20})
	}
	click()

	// Mid-session request for control: the user is asked again and agrees.
	if err := j.RequestPermissions(protocol.PermControl); err != nil {
		t.Fatal(err)
	}
	out := host.waitOutput(t, "Allow? ", 2, 10*time.Second)
	if last := out[strings.LastIndex(out, "They ask to:"):]; !strings.Contains(last, "1. control") || strings.Contains(last, "view") {
		t.Fatalf("the second prompt should ask for control only:\n%s", last)
	}
	host.typeLine(t, "1")
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, "view", "control") }); err != nil {
		t.Fatal(err)
	}
	noInputSince(t, w, mark, "a click made before control was granted")
	if ok, _, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatalf("take control after the grant: %v %v", ok, err)
	}
	click()
	w.Wait(t, `^button 1 down 20 20$`, 10*time.Second)
	allowedNow("view,control")

	// A request for the clipboard, denied: nothing changes.
	if err := j.RequestPermissions(protocol.PermClipboard); err != nil {
		t.Fatal(err)
	}
	host.waitOutput(t, "Allow? ", 3, 10*time.Second)
	host.typeLine(t, "no")
	p, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return strings.Contains(p.Message, "declined") })
	if err != nil || has(p, "clipboard") || !has(p, "view", "control") {
		t.Fatalf("after a denied request: %+v %v", p, err)
	}

	// The user revokes control: within 200 ms the technician knows, and
	// input stops working.
	start := time.Now()
	host.typeLine(t, "revoke control")
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return !has(p, "control") }); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("revoking control took %v to reach the technician, want ≤ 200 ms", d)
	}
	mark = len(w.Lines())
	click()
	time.Sleep(500 * time.Millisecond)
	noInputSince(t, w, mark, "a click after the revoke")
	allowedNow("view")

	// Pause: no frames; resume: frames again.
	host.typeLine(t, "pause")
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return p.Paused }); err != nil {
		t.Fatal(err)
	}
	allowedNow("view paused")
	time.Sleep(300 * time.Millisecond)
	before := j.Frames()
	xtest.StartPattern(t, display, "-mode", "counter", "-interval", "30")
	time.Sleep(time.Second)
	if got := j.Frames(); got != before {
		t.Fatalf("%d frames arrived while paused", got-before)
	}
	host.typeLine(t, "resume")
	waitFor(t, 5*time.Second, func() bool { return j.Frames() > before })

	// The user ends it.
	host.typeLine(t, "end")
	if code := host.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("host exit code %d", code)
	}
	// The terminal's last lines may still be on their way through the pty.
	host.waitOutput(t, "You ended the session.", 1, 3*time.Second)
	select {
	case <-j.Done():
		if !strings.Contains(j.EndReason(), "user ended") {
			t.Errorf("end reason %q", j.EndReason())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the technician was not told")
	}
	allowedNow("<not in the session>")
	ev := events(t, ctx, b, j.ID)
	for _, want := range []string{"host.connected", "viewer.joined", "consent.requested", "consent.granted", "permission.requested", "consent.denied", "consent.changed", "session.ended"} {
		if !slices.Contains(ev, want) {
			t.Errorf("no %s event in %v", want, ev)
		}
	}
}

// TestTechnicianCannotAnswer: the user answers a question on the shared
// screen, where a technician in control could click Allow or type "all"
// for them. While a question is open the technician's mouse and keyboard
// do nothing, and a key they held down is let go; once it is answered,
// they work again.
func TestTechnicianCannotAnswer(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	w := xtest.StartInputWitness(t, display)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, j, host := askedSession(t, ctx, b, display)
	host.typeLine(t, "1 2")
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, "view", "control") && !p.Pending }); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatalf("take control: %v %v", ok, err)
	}
	click := func() {
		send(t, ctx, j,
			protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 20, Y: 20},
			protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: false, X: 20, Y: 20})
	}
	click()
	w.Wait(t, `^button 1 up 20 20$`, 5*time.Second)
	send(t, ctx, j, key("ShiftLeft", true))
	w.Wait(t, `^key down \d+ Shift_L$`, 5*time.Second)

	if err := j.RequestPermissions(protocol.PermClipboard); err != nil {
		t.Fatal(err)
	}
	host.waitOutput(t, "Allow? ", 2, 10*time.Second)
	w.Wait(t, `^key up \d+ Shift_L$`, 5*time.Second)
	mark := len(w.Lines())
	send(t, ctx, j, tap("KeyA", "Enter")...)
	click()
	time.Sleep(500 * time.Millisecond)
	noInputSince(t, w, mark, "the technician's input while the user was asked")

	host.typeLine(t, "no")
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return strings.Contains(p.Message, "declined") }); err != nil {
		t.Fatal(err)
	}
	send(t, ctx, j, tap("KeyA")...)
	w.Wait(t, `^key down \d+ a$`, 5*time.Second)
}

// TestForgedClient: a client with view only sends raw input, opens file
// and shell channels and sends on them. Nothing happens on the host, and
// the broker reports it.
func TestForgedClient(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	w := xtest.StartInputWitness(t, display)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, j, host := askedSession(t, ctx, b, display)
	host.typeLine(t, "1")
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, "view") }); err != nil {
		t.Fatal(err)
	}
	mark := len(w.Lines())
	for _, ev := range []protocol.InputEvent{
		{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 5, Y: 5},
		{Kind: protocol.InputKey, Code: "KeyA", Down: true},
		{Kind: protocol.InputText, Text: "rm -rf ~"},
	} {
		send(t, ctx, j, ev)
	}
	for _, label := range []string{"files", "shell", "shell-1"} {
		// The broker may close the channel at once: a failed send is fine.
		j.SendOnChannel(ctx, label, []byte(`{"op":"put","path":"/etc/passwd"}`))
	}
	j.SendOnChannel(ctx, "files", []byte(`{"type":"get","path":".bashrc"}`))
	j.SendOnChannel(ctx, "shell-2", []byte("touch /tmp/forged\r"))
	if err := j.SendControl(ctx, protocol.ControlMessage{Type: protocol.ControlClipboardRequest}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	noInputSince(t, w, mark, "forged input")
	if _, ok := j.LastControl(protocol.ControlClipboard); ok {
		t.Fatal("the forged client got the user's clipboard")
	}
	if _, err := j.WaitControl(ctx, protocol.ControlInputDropped, func(m protocol.ControlMessage) bool { return m.Count >= 1 }); err != nil {
		t.Fatal(err)
	}
	if ev := events(t, ctx, b, j.ID); !slices.Contains(ev, "message.refused") {
		t.Fatalf("refusals not in the audit trail: %v", ev)
	}
	for _, never := range []string{"shell opened", "sending a file", "receiving a file"} {
		if strings.Contains(host.stderr.String(), never) {
			t.Errorf("the host logged %q for a client without the grant", never)
		}
	}
	if ev := events(t, ctx, b, j.ID); slices.Contains(ev, "shell.opened") || slices.Contains(ev, "file.transfer") {
		t.Errorf("a shell or transfer happened without the grant: %v", ev)
	}
}

// getJSON fetches a REST resource with the admin's API key.
func getJSON(t *testing.T, ctx context.Context, b *broker, url string, out any) {
	t.Helper()
	tlsCfg, err := dial.TLSConfig(b.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+b.admin.APIKey)
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// TestEscalation: a technician who is not in the session cannot join; once
// invited, the user is asked before the colleague sees anything, and the
// user's terminal says who is in.
func TestEscalation(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, j, host := askedSession(t, ctx, b, display)
	host.typeLine(t, "all")
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateUser(ctx, "lee", "l3-expert-password", "technician"); err != nil {
		t.Fatal(err)
	}
	lee := b.login(t, ctx, "lee", "l3-expert-password")
	if _, err := lee.Join(ctx, j.ID); err == nil || !strings.Contains(err.Error(), "not yours") {
		t.Fatalf("an uninvited technician joined: %v", err)
	}
	if err := c.Invite(ctx, j.ID, "lee", false); err != nil {
		t.Fatal(err)
	}
	jl, err := lee.Join(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer jl.Close()
	out := host.waitOutput(t, "Allow? ", 2, 10*time.Second)
	if last := out[strings.LastIndex(out, "asks to connect")-40:]; !strings.Contains(last, "lee (technician, Acme IT)") {
		t.Fatalf("the user is not told who asks:\n%s", last)
	}
	time.Sleep(300 * time.Millisecond)
	if jl.Frames() != 0 {
		t.Fatalf("the colleague saw %d frames before the user answered", jl.Frames())
	}
	host.typeLine(t, "1")
	if _, err := jl.Screenshot(ctx); err != nil {
		t.Fatal(err)
	}
	host.waitOutput(t, "lee (technician) can see your screen.", 1, 5*time.Second)
	host.waitOutput(t, "admin (admin) can see your screen, use your mouse and keyboard, and use your clipboard", 1, 5*time.Second)
	if ok, _, err := jl.TakeControl(ctx, true); err != nil || ok {
		t.Fatalf("the colleague took control without the user's grant: %v %v", ok, err)
	}

	// Hand-over: the session becomes lee's.
	if err := c.Invite(ctx, j.ID, "lee", true); err != nil {
		t.Fatal(err)
	}
	s, err := lee.Session(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev := events(t, ctx, b, s.ID); !slices.Contains(ev, "participant.invited") || !slices.Contains(ev, "session.handed_over") {
		t.Fatalf("events %v", ev)
	}
}
