package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/xtest"
)

// TestSupervisorAloneDoesNotKeepSession: the technician leaves for good
// while a supervisor watches. The session ends as abandoned after the
// grace, as with nobody left: the supervisor can neither work it nor end
// it, and the user's screen stayed shared with them for ever.
func TestSupervisorAloneDoesNotKeepSession(t *testing.T) {
	// Mostly waiting out the time a technician has to come back: it runs
	// beside the other tests that wait.
	t.Parallel()
	const grace = 2 * time.Second
	display := xtest.StartXvfb(t, 320, 240)
	b := startBrokerWith(t, func(c *server.Config) { c.ViewerGrace = grace })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for name, role := range map[string]string{"tina": "technician", "sue": "supervisor"} {
		if err := b.CreateUser(ctx, name, name+"-password-1", role); err != nil {
			t.Fatal(err)
		}
	}
	sess, jTina, _ := joinLiveAs(t, ctx, b.login(t, ctx, "tina", "tina-password-1"), hostOn(t, b, display))
	jSue, err := b.login(t, ctx, "sue", "sue-password-1").Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer jSue.Close()
	if _, err := jSue.Screenshot(ctx); err != nil {
		t.Fatalf("the supervisor sees nothing: %v", err)
	}
	left := time.Now()
	jTina.Close()
	select {
	case <-jSue.Done():
	case <-time.After(grace + 10*time.Second):
		t.Fatalf("%v after the technician left, the session goes on with only a supervisor watching", time.Since(left))
	}
	if s, err := b.client(t).Session(ctx, sess.ID); err != nil || s.State != "ended" || s.EndReason != "The technician left the session." {
		t.Errorf("the session: %+v, %v", s, err)
	}
	if d := time.Since(left); d < grace {
		t.Errorf("ended %v after the technician left, before the grace of %v", d, grace)
	}
}

// TestDisabledTechniciansCodeEnds: a technician's account is disabled
// (they left the company) after they gave a user a code. The session ends
// at once, and the user who enters the code is told it is over, instead
// of waiting, connected, for a technician who cannot come.
func TestDisabledTechniciansCodeEnds(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.CreateUser(ctx, "tina", "tina-password-1", "technician"); err != nil {
		t.Fatal(err)
	}
	tina := b.login(t, ctx, "tina", "tina-password-1")
	sess, err := tina.CreateSession(ctx, "INC-GONE")
	if err != nil {
		t.Fatal(err)
	}
	if status, out := apiCall(t, b.httpClient(t), "PATCH", b.URL()+"/api/v1/users/tina", b.admin.APIKey, `{"disabled":true}`, nil); status != 200 {
		t.Fatalf("disable: %d %v", status, out)
	}
	if s, err := b.client(t).Session(ctx, sess.ID); err != nil || s.State != "ended" || s.EndReason != "The technician is no longer available: ask for a new code." {
		t.Errorf("the disabled technician's waiting session: %+v, %v", s, err)
	}
	host := runHost(t, display, true, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	if code := host.wait(t, 20*time.Second); code == 0 || !strings.Contains(host.stderr.String()+host.stdout.String(), "That support code's session has ended") {
		t.Errorf("the user entering the code: exit %d\n%s%s", code, host.stdout.String(), host.stderr.String())
	}
}

// TestColleagueEndIsAttributed: a colleague invited in ends the session
// while its technician works it. The technician and the user read who did,
// and the audit trail and the ticket system name them: all said "the
// technician", and the ticket's log credited the session's technician.
func TestColleagueEndIsAttributed(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	b, hc := webhookBroker(t)
	ts := newTicketSystem(t)
	register(t, b, hc, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, name := range []string{"tina", "tom"} {
		if err := b.CreateUser(ctx, name, name+"-password-1", "technician"); err != nil {
			t.Fatal(err)
		}
	}
	tina := b.login(t, ctx, "tina", "tina-password-1")
	tom := b.login(t, ctx, "tom", "tom-password-1")
	sess, jTina, host := joinLiveAs(t, ctx, tina, hostOn(t, b, display))
	if err := tina.Invite(ctx, sess.ID, "tom", false); err != nil {
		t.Fatal(err)
	}
	if err := tom.EndSession(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	const said = "tom (technician) ended the session."
	<-jTina.Done()
	if jTina.EndReason() != said {
		t.Errorf("the technician reads %q", jTina.EndReason())
	}
	host.wait(t, 20*time.Second)
	if !strings.Contains(host.stdout.String(), "Session ended: "+said) {
		t.Errorf("the user reads:\n%s", host.stdout.String())
	}
	var ended map[string]any
	for _, e := range auditEvents(t, ctx, b, sess.ID, "session.ended") {
		ended = map[string]any{"actor": e.Actor, "cause": e.Detail["cause"]}
	}
	if ended["actor"] != "tom" || ended["cause"] != "technician" {
		t.Errorf("the trail's end: %v, want tom's", ended)
	}
	d := ts.wait(t, sess.ID, "session.ended")["session.ended"].Data
	if d["ended_by"] != "tom" || d["technician"] != "tina" || d["end_cause"] != "technician" {
		t.Errorf("the ticket system hears: ended_by %v, technician %v, end_cause %v", d["ended_by"], d["technician"], d["end_cause"])
	}
}
