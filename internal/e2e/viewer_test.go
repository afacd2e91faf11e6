package e2e

import (
	"context"
	"encoding/pem"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
)

// TestViewerCLI drives bin/viewer as a technician would: log in with a
// password, create a session, and save the remote screen as a PNG.
func TestViewerCLI(t *testing.T) {
	const w, h = 800, 600
	display := xtest.StartXvfb(t, w, h)
	xtest.StartPattern(t, display)
	b := startBroker(t)
	viewer := xtest.Build(t, "./viewer")
	run, home := viewerAtHome(t, b)

	if out, err := run("admin\nwrong-password\n", "login"); err == nil || !strings.Contains(out, "Wrong username or password") {
		t.Fatalf("login with a wrong password: %v\n%s", err, out)
	}
	if out, err := run("", "create"); err == nil || !strings.Contains(out, "Log in") {
		t.Fatalf("create before login: %v\n%s", err, out)
	}
	if out, err := run(b.admin.User+"\n"+b.admin.Password+"\n", "login"); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	// The saved login goes to this broker only, not to a mistyped address.
	var sent []string
	var sentMu sync.Mutex
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sentMu.Lock()
		sent = append(sent, r.Header.Get("Authorization"))
		sentMu.Unlock()
		http.Error(w, `{"error":{"code":"unauthorized","message":"Log in first."}}`, http.StatusUnauthorized)
	}))
	defer other.Close()
	otherCA := filepath.Join(t.TempDir(), "other.pem")
	os.WriteFile(otherCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Certificate().Raw}), 0o644)
	cmd := exec.Command(viewer, "-broker", other.URL, "-ca", otherCA, "create")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "TETHER_API_KEY=")
	cmd.CombinedOutput()
	sentMu.Lock()
	if len(sent) == 0 || slices.ContainsFunc(sent, func(a string) bool { return a != "" }) {
		t.Errorf("to another broker the viewer sent %q", sent)
	}
	sentMu.Unlock()
	if out, err := run("", "create", "-ask", "view,teleport"); err == nil || !strings.Contains(out, "permissions must be a list of view, control") {
		t.Fatalf("create asking for an unknown permission: %v\n%s", err, out)
	}
	out, err := run("", "create", "-ticket", "INC-77", "-ask", "view, clipboard")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	var id, code string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "session" {
			id = f[1]
		}
		if len(f) >= 2 && f[0] == "code" {
			code = f[1]
		}
	}
	if id == "" || len(code) < 9 {
		t.Fatalf("create printed no session id or code:\n%s", out)
	}
	// The link to send the user, as the console offers it.
	if !strings.Contains(out, "join    "+b.URL()+"/join/"+code+" ") {
		t.Errorf("create printed no join link for the user:\n%s", out)
	}
	host := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), code)

	png1 := filepath.Join(t.TempDir(), "screen.png")
	if out, err := run("", "screenshot", "-session", id, "-o", png1, "-timeout", "30s"); err != nil {
		t.Fatalf("screenshot: %v\n%s\nhost:\n%s", err, out, host.stderr.String())
	}
	f, err := os.Open(png1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if got := img.Bounds().Dx(); got != w {
		t.Fatalf("screenshot width %d, want %d", got, w)
	}
	if got := colourAt(img, 3*w/4, 3*h/4); !near(got, xtest.BottomRight, 40) {
		t.Errorf("bottom-right quadrant is %v, want %v", got, xtest.BottomRight)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	asked := auditEvents(t, ctx, b, id, "consent.requested")
	if len(asked) == 0 || fmt.Sprint(asked[0].Detail["permissions"]) != "[view clipboard]" {
		t.Errorf("the user was asked %v, want view and clipboard", asked)
	}

	if out, err := run("", "end", "-session", id); err != nil || !strings.Contains(out, "Ended session "+id+" for everyone.") {
		t.Fatalf("end: %v\n%s", err, out)
	}
	if code := host.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("host exit code %d", code)
	}

	// Logging out ends the login on the broker and forgets it here; the
	// saved login names its broker, so -broker is not needed.
	tokenFile := filepath.Join(home, ".config", "tether", "token")
	saved, err := os.ReadFile(tokenFile)
	if f := strings.Fields(string(saved)); err != nil || len(f) != 2 {
		t.Fatalf("saved login %q: %v", saved, err)
	}
	token := strings.Fields(string(saved))[1]
	stillLoggedIn := func(what string) {
		t.Helper()
		if _, err := os.Stat(tokenFile); err != nil {
			t.Fatalf("the login token is gone after %s: %v", what, err)
		}
		if status, _ := apiCall(t, b.httpClient(t), "GET", b.URL()+"/api/v1/me", token, "", nil); status != http.StatusOK {
			t.Fatalf("the login no longer works after %s: %d", what, status)
		}
	}
	logoutCmd := func(args ...string) (string, error) {
		cmd := exec.Command(viewer, args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "TETHER_API_KEY=", "TETHER_BROKER=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Asking for help logs nobody out.
	if out, err := logoutCmd("logout", "-h"); err != nil || !strings.Contains(out, "Usage: viewer logout") {
		t.Errorf("logout -h: %v\n%s", err, out)
	}
	stillLoggedIn("logout -h")
	// Without the broker's CA, the broker cannot be told: the login is
	// kept, to log out of once the CA is given, and the command fails.
	if out, err := logoutCmd("logout"); err == nil || !strings.Contains(out, "still saved") || !strings.Contains(out, "-ca") {
		t.Errorf("logout without the broker's CA: %v\n%s", err, out)
	}
	stillLoggedIn("a logout that could not reach the broker")
	cmd = exec.Command(viewer, "-ca", b.CAFile(), "logout")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "TETHER_API_KEY=", "TETHER_BROKER=")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Logged out of "+b.URL()+": the broker ended the login") {
		t.Fatalf("logout: %v\n%s", err, out)
	}
	if _, err := os.Stat(tokenFile); !os.IsNotExist(err) {
		t.Errorf("the login token is still saved after logout: %v", err)
	}
	if status, _ := apiCall(t, b.httpClient(t), "GET", b.URL()+"/api/v1/me", token, "", nil); status != http.StatusUnauthorized {
		t.Errorf("the token logged out of still works: %d", status)
	}
	if out, err := run("", "create"); err == nil || !strings.Contains(out, "Log in") {
		t.Errorf("create after logout: %v\n%s", err, out)
	}
	if out, err := run("", "logout"); err != nil || !strings.Contains(out, "No login is saved") {
		t.Errorf("logout with no login saved: %v\n%s", err, out)
	}
}

// TestViewerAsksForWhatItNeeds: a session that did not ask for file
// transfer; the user allows what it asked, and the viewer command that
// needs files asks for them alone. A no ends the command with the user's
// word; a yes lets it run.
func TestViewerAsksForWhatItNeeds(t *testing.T) {
	// Mostly waiting for the broker and the user's computer to answer: it
	// runs beside the other tests that wait.
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	display := xtest.StartXvfb(t, 320, 240)
	b := startBroker(t)
	sess, err := b.client(t).CreateSession(ctx, "INC-ASK", protocol.PermView)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "app.log"), []byte("log\n"), 0o644)
	var host *hostProc
	ls := func(answers ...string) (string, error) {
		cmd := b.viewer(t, "ls", "-session", sess.ID)
		out := startCmd(t, cmd)
		if host == nil { // the technician is first: the user runs the host after
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "Waiting for the user's computer to connect"); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the viewer does not say it waits for the user's computer:\n%s", out.String())
				}
			}
			host = runHostEnv(t, display, false, []string{"HOME=" + home}, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
		}
		asked := strings.Count(host.stdout.String(), "Allow? ")
		for i, a := range answers {
			screen := host.waitOutput(t, "Allow? ", asked+i+1, 30*time.Second)
			question := screen[max(0, strings.LastIndex(screen, "\nadmin (admin")):]
			more := strings.Contains(question, "connected already, asks for more on this computer")
			if !more && !strings.Contains(question, `asks to connect to this computer for ticket "INC-ASK"`) {
				t.Errorf("a question neither to connect nor for more:\n%s", question)
			}
			if more && (!strings.Contains(question, "files") || strings.Contains(question, "view")) {
				t.Errorf("the question for more is not for files alone:\n%s", question)
			}
			if !more && i > 0 {
				t.Errorf("asked to connect after answering:\n%s", question)
			}
			host.typeLine(t, a)
		}
		err := cmd.Wait()
		return out.String(), err
	}

	out, err := ls("1", "no")
	if err == nil || !strings.Contains(out, "Asking the user for files") || !strings.Contains(out, "has not allowed files: The user declined") || strings.Contains(out, "app.log") {
		t.Fatalf("ls, files refused: %v\n%s", err, out)
	}
	// The next command keeps the view the user allowed the last one: only
	// files is asked for.
	connects := strings.Count(host.stdout.String(), "asks to connect")
	out, err = ls("1")
	if err != nil || !strings.Contains(out, "app.log") || strings.Contains(out, "Waiting for the user's computer") {
		t.Fatalf("ls, files allowed: %v\n%s\nhost:\n%s", err, out, host.stdout.String())
	}
	if strings.Count(host.stdout.String(), "asks to connect") != connects {
		t.Errorf("the user was asked again to let the technician in:\n%s", host.stdout.String())
	}
	if n := len(auditEvents(t, ctx, b, sess.ID, "permission.requested")); n != 2 {
		t.Errorf("%d permission requests audited, want 2", n)
	}

	// While the user has paused, a command says so. (A technician stays
	// connected meanwhile: with no one connected there is nothing to pause.)
	watching, err := b.client(t).Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watching.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, protocol.PermView) }); err != nil {
		t.Fatal(err)
	}
	host.typeLine(t, "pause")
	host.waitOutput(t, "PAUSED", 1, 10*time.Second)
	out, err = ls()
	if err == nil || !strings.Contains(out, "the user has paused the session") {
		t.Fatalf("ls while paused: %v\n%s", err, out)
	}
	host.typeLine(t, "resume")
	watching.Close()

	// A second question while the user is still answering the first is
	// refused with the broker's reason, not left waiting. (A colleague: the
	// admin, back at once, would not be asked.)
	lee := colleague(t, ctx, b, b.client(t), sess.ID)
	asked := strings.Count(host.stdout.String(), "Allow? ")
	j, err := lee.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	host.waitOutput(t, "Allow? ", asked+1, 30*time.Second)
	askCtx, cancelAsk := context.WithTimeout(ctx, 20*time.Second)
	defer cancelAsk()
	if _, err := j.Ask(askCtx, protocol.PermFiles); err == nil || !strings.Contains(err.Error(), "still answering") {
		t.Errorf("asking during another question: %v", err)
	}
}

// TestViewerScreenshotRefused: a screenshot the user refuses ends with the
// user's word at once, not after waiting for a picture that cannot come.
func TestViewerScreenshotRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	display := xtest.StartXvfb(t, 320, 240)
	b := startBroker(t)
	sess, err := b.client(t).CreateSession(ctx, "INC-NO", protocol.PermView)
	if err != nil {
		t.Fatal(err)
	}
	host := runHostEnv(t, display, false, nil, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	cmd := b.viewer(t, "screenshot", "-session", sess.ID, "-o", filepath.Join(t.TempDir(), "s.png"))
	out := startCmd(t, cmd)
	host.waitOutput(t, "Allow? ", 1, 20*time.Second)
	start := time.Now()
	host.typeLine(t, "no")
	err = cmd.Wait()
	if err == nil || !strings.Contains(out.String(), "has not allowed view: The user declined") || time.Since(start) > 10*time.Second {
		t.Fatalf("screenshot refused, after %s: %v\n%s", time.Since(start), err, out.String())
	}
	if strings.Contains(out.String(), "Asking the user") {
		t.Errorf("the user who allowed nothing is asked again:\n%s", out.String())
	}
}

// TestViewerKeyWithLineEnd: an API key copied with its line end (a CR
// from a Windows file) still works, rather than the broker being called
// unreachable.
func TestViewerKeyWithLineEnd(t *testing.T) {
	b := startBroker(t)
	cmd := b.viewer(t, "create")
	cmd.Env = append(cmd.Env, "TETHER_API_KEY="+b.admin.APIKey+"\r\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "code ") {
		t.Fatalf("create with a key ending in CR LF: %v\n%s", err, out)
	}
}

// TestViewerJoinRefusedSaysWhy: a key that may not join sessions is
// turned away with the broker's reason, not a bare "forbidden".
func TestViewerJoinRefusedSaysWhy(t *testing.T) {
	b := startBroker(t)
	status, key := apiCall(t, b.httpClient(t), "POST", b.URL()+"/api/v1/keys", b.admin.APIKey, `{"name":"read only","scopes":["sessions:read"]}`, nil)
	if status != 201 {
		t.Fatalf("create key: %d %v", status, key)
	}
	cmd := b.viewer(t, "join", "-session", "s_nosuchsession")
	cmd.Env = append(cmd.Env, "TETHER_API_KEY="+key["key"].(string))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "may not join sessions") {
		t.Fatalf("join with a key that may not join: %v\n%s", err, out)
	}
}

// TestViewerLoginTwoFactor: `viewer login` asks for the two-factor code of
// an account that has it, after the password; a wrong code is refused
// with why; an account whose role requires two-factor authentication it
// has not set up is told to set it up in the console, and no login is
// saved that could do nothing else.
func TestViewerLoginTwoFactor(t *testing.T) {
	b := startBroker(t)
	ctx := context.Background()
	run, home := viewerAtHome(t, b)
	hc := newSpecChecker(t, b).client()
	api := b.URL() + "/api/v1"

	b.CreateUser(ctx, "tina", "tina-password-1", "technician")
	tok := b.loginToken(t, "tina", "tina-password-1")
	_, enrol := apiCall(t, hc, "POST", api+"/me/totp", tok, `{"password":"tina-password-1"}`, nil)
	secret, _ := enrol["secret"].(string)
	code, _ := auth.TOTPCode(secret, b.now())
	status, confirmed := apiCall(t, hc, "POST", api+"/me/totp/confirm", tok, `{"code":"`+code+`"}`, nil)
	if status != 200 {
		t.Fatalf("confirm: %d %v", status, confirmed)
	}
	if out, err := run("tina\ntina-password-1\n999999\n", "login"); err == nil || !strings.Contains(out, "Two-factor code (or a recovery code): ") || !strings.Contains(out, "That two-factor code is wrong") {
		t.Fatalf("login with a wrong code: %v\n%s", err, out)
	}
	code, _ = auth.TOTPCode(secret, b.now().Add(30*time.Second)) // the enrolment's is used
	if out, err := run("tina\ntina-password-1\n"+code+"\n", "login"); err != nil || !strings.Contains(out, "Logged in") {
		t.Fatalf("login with the code: %v\n%s", err, out)
	}
	if out, err := run("", "create", "-ticket", "INC-2FA"); err != nil || !strings.Contains(out, "session s_") {
		t.Fatalf("create with the login: %v\n%s", err, out)
	}
	// A recovery code does for a lost phone, once.
	recovery := confirmed["recovery_codes"].([]any)[0].(string)
	if out, err := run("tina\ntina-password-1\n"+recovery+"\n", "login"); err != nil || !strings.Contains(out, "Logged in") {
		t.Fatalf("login with a recovery code: %v\n%s", err, out)
	}
	if out, err := run("tina\ntina-password-1\n"+recovery+"\n", "login"); err == nil || !strings.Contains(out, "That two-factor code is wrong or was already used") {
		t.Fatalf("login with a recovery code used before: %v\n%s", err, out)
	}

	b.CreateUser(ctx, "tom", "tom-password-1", "supervisor")
	if status, out := apiCall(t, hc, "PUT", api+"/settings", b.admin.APIKey, `{"totp_required_roles":["supervisor"]}`, nil); status != 200 {
		t.Fatalf("settings: %d %v", status, out)
	}
	os.RemoveAll(filepath.Join(home, ".config"))
	out, err := run("tom\ntom-password-1\n", "login")
	if err == nil || !strings.Contains(out, "Account security") {
		t.Fatalf("login of an account that must set up two-factor authentication: %v\n%s", err, out)
	}
	if out, err := run("", "create"); err == nil || !strings.Contains(out, "Log in") {
		t.Fatalf("a login was saved for an account that must enrol first: %v\n%s", err, out)
	}
}

// viewerAtHome runs bin/viewer against b as a technician with no API key
// and a home of their own, where `viewer login` saves its token: run
// feeds it stdin and returns all it printed.
func viewerAtHome(t *testing.T, b *broker) (run func(stdin string, args ...string) (string, error), home string) {
	t.Helper()
	viewer := xtest.Build(t, "./viewer")
	home = t.TempDir()
	return func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(viewer, append([]string{"-broker", b.URL(), "-ca", b.CAFile()}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "TETHER_API_KEY=")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}, home
}

// TestViewerScreenshotKeepsWhatItHad: `viewer screenshot` into a folder
// that cannot take it says so before the user is asked anything, and one
// whose write fails (a full disk) leaves the file it would have replaced
// as it was, and nothing of its own.
func TestViewerScreenshotKeepsWhatItHad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	display := xtest.StartXvfb(t, 320, 240)
	b := startBroker(t)
	sess, err := b.client(t).CreateSession(ctx, "INC-PNG", protocol.PermView)
	if err != nil {
		t.Fatal(err)
	}
	// No user's computer yet: a viewer that asked would wait for it.
	cmd := b.viewer(t, "screenshot", "-session", sess.ID, "-o", filepath.Join(t.TempDir(), "gone", "s.png"))
	start := time.Now()
	stop := time.AfterFunc(15*time.Second, func() { cmd.Process.Kill() })
	out, err := cmd.CombinedOutput()
	stop.Stop()
	if err == nil || !strings.Contains(string(out), "cannot be saved there") || time.Since(start) > 10*time.Second {
		t.Fatalf("a screenshot into a missing folder, after %s: %v\n%s", time.Since(start), err, out)
	}

	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (CI runs as root)")
	}
	dir := smallDisk(t, 1)
	shot := filepath.Join(dir, "screen.png")
	if err := os.WriteFile(shot, []byte("last week's screenshot"), 0o644); err != nil {
		t.Fatal(err)
	}
	fill(t, filepath.Join(dir, "filler"))
	host := runHostEnv(t, display, false, nil, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	cmd = b.viewer(t, "screenshot", "-session", sess.ID, "-o", shot)
	stdout := startCmd(t, cmd)
	host.waitOutput(t, "Allow? ", 1, 20*time.Second)
	host.typeLine(t, "all")
	if err := cmd.Wait(); err == nil || !strings.Contains(stdout.String(), "was not saved") {
		t.Fatalf("a screenshot onto a full disk: %v\n%s", err, stdout.String())
	}
	if got, _ := os.ReadFile(shot); string(got) != "last week's screenshot" {
		t.Errorf("the file a failed screenshot would have replaced now holds %q", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("left on the disk: %v", entries)
	}
}

// TestViewerShellNumberChecked: a shell number out of range is a usage
// error at once (exit code 2), not a question to the user for a shell that
// cannot open.
func TestViewerShellNumberChecked(t *testing.T) {
	b := startBroker(t)
	sess, err := b.client(t).CreateSession(context.Background(), "INC-SH", protocol.PermShell)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"0", "100", "two"} {
		cmd := b.viewer(t, "shell", "-session", sess.ID, "-n", n)
		stop := time.AfterFunc(15*time.Second, func() { cmd.Process.Kill() })
		out, err := cmd.CombinedOutput()
		stop.Stop()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "a shell number is 1 to 99") {
			t.Errorf("viewer shell -n %s: %v\n%s", n, err, out)
		}
	}
}
