package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

func TestMain(m *testing.M) {
	// Under nohup this process starts with SIGHUP ignored, and so would
	// every host it starts: a host started so outlives its terminal, as it
	// is meant to, and the tests that close the user's terminal would
	// fail. A signal this process catches is back to its default in the
	// programs it starts; caught, it is still lost on this process. Not
	// under nohup, closing the terminal stops the tests as before.
	if signal.Ignored(syscall.SIGHUP) {
		signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	}
	code := m.Run()
	xtest.Cleanup()
	os.Exit(code)
}

// broker is a real broker running in the test process, with a clock the
// test can move forward.
type broker struct {
	*server.Broker
	admin  server.InitialAdmin
	offset atomic.Int64 // added to the real time, in nanoseconds
	stop   func()       // shuts the broker down, once; the test's end does it too
}

func (b *broker) now() time.Time { return time.Now().Add(time.Duration(b.offset.Load())) }

// advance moves the broker's clock forward.
func (b *broker) advance(d time.Duration) { b.offset.Add(int64(d)) }

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	return startBrokerWith(t, nil)
}

// startBrokerWith starts a broker whose configuration tune may change.
func startBrokerWith(t *testing.T, tune func(*server.Config)) *broker {
	t.Helper()
	b := &broker{}
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	cfg := server.Config{
		Addr: "127.0.0.1:0", DataDir: dir, UDPPort: freeUDPPort(t), Logger: logger, Now: b.now,
		ViewerGrace: 10 * time.Second, Organisation: "Acme IT",
	}
	if tune != nil {
		tune(&cfg)
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	b.Broker = srv
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var stop sync.Once
	b.stop = func() {
		stop.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("broker: %v", err)
			}
		})
	}
	t.Cleanup(b.stop)
	data, err := os.ReadFile(srv.InitialAdminPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &b.admin); err != nil {
		t.Fatal(err)
	}
	return b
}

// testWriter sends log lines to t.Log so they show with the failing test.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (b *broker) client(t *testing.T) *client.Client {
	t.Helper()
	u, err := dial.BrokerURL(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Broker: u, CAFile: b.CAFile(), Token: b.admin.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keyClient has the admin create an API key (body is the request, as the
// API takes it) and returns a client that uses it, and the key's id.
func (b *broker) keyClient(t *testing.T, body string) (*client.Client, string) {
	t.Helper()
	status, key := apiCall(t, b.httpClient(t), "POST", b.URL()+"/api/v1/keys", b.admin.APIKey, body, nil)
	if status != 201 {
		t.Fatalf("create key: %d %v", status, key)
	}
	u, _ := dial.BrokerURL(b.URL())
	c, err := client.New(client.Config{Broker: u, CAFile: b.CAFile(), Token: key["key"].(string)})
	if err != nil {
		t.Fatal(err)
	}
	return c, key["id"].(string)
}

// revokeKey has the admin revoke the API key id.
func (b *broker) revokeKey(t *testing.T, id string) {
	t.Helper()
	if status, out := apiCall(t, b.httpClient(t), "DELETE", b.URL()+"/api/v1/keys/"+id, b.admin.APIKey, "", nil); status != 200 {
		t.Fatalf("revoke: %d %v", status, out)
	}
}

// viewer is the viewer command with args, run against b with the admin's
// API key.
func (b *broker) viewer(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(xtest.Build(t, "./viewer"), append([]string{"-broker", b.URL(), "-ca", b.CAFile()}, args...)...)
	cmd.Env = append(os.Environ(), "TETHER_API_KEY="+b.admin.APIKey)
	return cmd
}

// login returns a client logged in with a password.
func (b *broker) login(t *testing.T, ctx context.Context, user, password string) *client.Client {
	t.Helper()
	u, _ := dial.BrokerURL(b.URL())
	c, err := client.New(client.Config{Broker: u, CAFile: b.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, user, password, ""); err != nil {
		t.Fatal(err)
	}
	return c
}

// colourAt averages a 9x9 block around (x, y), tolerating codec loss at edges.
func colourAt(img image.Image, x, y int) [3]uint8 {
	var r, g, b, n uint32
	for dy := -4; dy <= 4; dy++ {
		for dx := -4; dx <= 4; dx++ {
			cr, cg, cb, _ := img.At(x+dx, y+dy).RGBA()
			r, g, b, n = r+cr>>8, g+cg>>8, b+cb>>8, n+1
		}
	}
	return [3]uint8{uint8(r / n), uint8(g / n), uint8(b / n)}
}

func near(got, want [3]uint8, tol int) bool {
	for i := range got {
		d := int(got[i]) - int(want[i])
		if d < -tol || d > tol {
			return false
		}
	}
	return true
}

func TestHostStreamsToViewer(t *testing.T) {
	const w, h = 1280, 720
	display := xtest.StartXvfb(t, w, h)
	xtest.StartPattern(t, display)
	b := startBroker(t)
	c := b.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	sess, err := c.CreateSession(ctx, "INC-1001")
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.Code) < 9 || strings.Trim(sess.Code, "0123456789") != "" {
		t.Fatalf("code %q is not 9+ digits", sess.Code)
	}
	// No Xauthority file, as under Xvfb or with xhost access.
	host := runHostEnv(t, display, true, []string{"HOME=" + t.TempDir(), "XAUTHORITY="}, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)

	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	img, err := j.Screenshot(ctx)
	if err != nil {
		t.Fatalf("screenshot: %v\nhost stderr:\n%s", err, host.stderr.String())
	}
	if got := img.Bounds().Size(); got != image.Pt(w, h) {
		t.Fatalf("screenshot is %v, want %dx%d", got, w, h)
	}
	for _, p := range []struct {
		name string
		x, y int
		want [3]uint8
	}{
		{"top-left", w / 4, h / 4, xtest.TopLeft},
		{"top-right", 3 * w / 4, h / 4, xtest.TopRight},
		{"bottom-left", w / 4, 3 * h / 4, xtest.BottomLeft},
		{"bottom-right", 3 * w / 4, 3 * h / 4, xtest.BottomRight},
	} {
		if got := colourAt(img, p.x, p.y); !near(got, p.want, 40) {
			t.Errorf("%s quadrant is %v, want %v", p.name, got, p.want)
		}
	}
	if hi := j.Host(); hi == nil || hi.Width != w || hi.Height != h {
		t.Errorf("host info = %+v, want %dx%d", hi, w, h)
	}

	// The technician ends the session: the host exits cleanly and says so.
	if err := c.EndSession(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	if code := host.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("host exit code %d after the technician ended; stderr:\n%s", code, host.stderr.String())
	}
	if !strings.Contains(host.stdout.String(), "Session ended: The technician ended the session.") {
		t.Errorf("host stdout = %q", host.stdout.String())
	}
	if strings.Contains(host.stderr.String(), "XGB") {
		t.Errorf("the user's terminal shows the X client library's chatter:\n%s", host.stderr.String())
	}
	select {
	case <-j.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("viewer was not told the session ended")
	}
	got, err := c.Session(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "ended" {
		t.Errorf("session state %q, want ended", got.State)
	}
}

// TestHostLeavingEndsSession: when the user stops the host (Ctrl+C, or
// SIGTERM as when they log out), the technician learns that the user ended
// the session, every time: not that the computer disconnected, and not
// that the user declined a question that was open.
func TestHostLeavingEndsSession(t *testing.T) {
	// Mostly waiting for the broker and the user's computer to answer: it
	// runs beside the other tests that wait.
	t.Parallel()
	display := xtest.StartXvfb(t, 640, 480)
	b := startBroker(t)
	c := b.client(t)
	for _, tt := range []struct {
		name   string
		signal os.Signal
		asking bool
	}{
		{"Ctrl+C while sharing", os.Interrupt, false},
		{"SIGTERM while sharing", syscall.SIGTERM, false},
		{"Ctrl+C while asking", os.Interrupt, true},
		{"SIGTERM while asking", syscall.SIGTERM, true},
		// Closing the terminal window the host runs in sends SIGHUP.
		{"terminal closed while sharing", syscall.SIGHUP, false},
		{"terminal closed while asking", syscall.SIGHUP, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var j *client.Joined
			var host *hostProc
			if tt.asking {
				_, j, host = askedSession(t, ctx, b, display)
			} else {
				sess, err := c.CreateSession(ctx, "")
				if err != nil {
					t.Fatal(err)
				}
				if j, err = c.Join(ctx, sess.ID); err != nil {
					t.Fatal(err)
				}
				defer j.Close()
				host = startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
				if _, err := j.Screenshot(ctx); err != nil {
					t.Fatalf("screenshot: %v\n%s", err, host.stderr.String())
				}
			}
			host.cmd.Process.Signal(tt.signal)
			if code := host.wait(t, 10*time.Second); code != 0 {
				t.Fatalf("host exit code %d; stderr:\n%s", code, host.stderr.String())
			}
			select {
			case <-j.Done():
				if j.EndReason() != "The user ended the session." {
					t.Errorf("the technician reads %q", j.EndReason())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("viewer was not told the session ended")
			}
			if !strings.Contains(host.stdout.String(), "Session ended: You stopped sharing.") {
				t.Errorf("the host's terminal:\n%s", host.stdout.String())
			}
			if ev := events(t, ctx, b, j.ID); slices.Contains(ev, "consent.denied") {
				t.Errorf("the trail says the user declined: %v", ev)
			}
		})
	}
}

// TestHostErrors: each failure the user can meet gives one clear line on
// stderr and a non-zero exit.
func TestHostErrors(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	b := startBroker(t)
	c := b.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	used, err := c.CreateSession(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	first := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), used.Code)
	waitState(t, c, used.ID, "active", first)
	// A code whose session is over, used up.
	finished, err := c.CreateSession(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	done := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), finished.Code)
	waitState(t, c, finished.ID, "active", done)
	if err := c.EndSession(ctx, finished.ID); err != nil {
		t.Fatal(err)
	}
	done.wait(t, 10*time.Second)

	expired, err := c.CreateSession(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := c.CreateSession(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "https://" + closed.Addr().String()
	closed.Close()
	aFile := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(aFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		display string
		before  func()
		args    []string
		want    string
	}{
		{"no display", xtest.FreeDisplay(t), nil, []string{"-broker", b.URL(), "-ca", b.CAFile(), fresh.Code}, "No desktop to share was found on this computer. Run this command in a terminal on your desktop"},
		// Ubuntu's and Fedora's default desktop: sharing it would show a black screen.
		{"wayland desktop", xtest.StartXwayland(t), nil, []string{"-broker", b.URL(), "-ca", b.CAFile(), fresh.Code}, "pick an Xorg session"},
		{"broker unreachable", display, nil, []string{"-broker", unreachable, "-ca", b.CAFile(), fresh.Code}, "Could not reach the support server at " + strings.TrimPrefix(unreachable, "https://") + ". Check that this computer is online"},
		{"certificate not trusted", display, nil, []string{"-broker", b.URL(), fresh.Code}, "cannot confirm that it is talking to the support server at " + strings.TrimPrefix(b.URL(), "https://") + ": its security certificate is not trusted, so nothing was shared"},
		{"certificate file missing", display, nil, []string{"-broker", b.URL(), "-ca", "/nonexistent/ca.pem", fresh.Code}, "The certificate file /nonexistent/ca.pem was not found."},
		{"no shared folder", display, nil, []string{"-broker", b.URL(), "-ca", b.CAFile(), "-files-root", filepath.Join(t.TempDir(), "gone"), fresh.Code}, "does not exist. Give an existing folder after -files-root"},
		{"inbox a file", display, nil, []string{"-broker", b.URL(), "-ca", b.CAFile(), "-files-inbox", aFile, fresh.Code}, "is a file, not a folder. Give a folder you can write to after -files-inbox"},
		{"wrong code", display, nil, []string{"-broker", b.URL(), "-ca", b.CAFile(), "000000000"}, "Could not join the support session. That support code is not valid."},
		{"code too short", display, nil, []string{"-broker", b.URL(), "-ca", b.CAFile(), "12345678"}, "is not a support code: it is nine digits"},
		{"a letter in the code", display, nil, []string{"-broker", b.URL(), "-ca", b.CAFile(), "482", "193", "O75"}, "is not a support code: it is nine digits"},
		{"frame rate out of range", display, nil, []string{"-broker", b.URL(), "-ca", b.CAFile(), "-fps", "100", fresh.Code}, "give 1 to 60 frames per second"},
		// Typed in groups, as it is read out, without quotes.
		// The user starts the host again in a second window while the
		// first is connected: nothing is wrong with their code.
		{"code connected in another window", display, nil, []string{"-broker", b.URL(), "-ca", b.CAFile(), used.Code[:3], used.Code[3:6], used.Code[6:]},
			"Could not join the support session. This support code is already connected from another window or computer, where its session is still going on. Use that window and close this one."},
		{"code of a session that ended", display, nil, []string{"-broker", b.URL(), "-ca", b.CAFile(), finished.Code},
			"Could not join the support session. That support code's session has ended, and each code works once. Ask your technician for a new one."},
		{"expired code", display, func() { b.advance(11 * time.Minute) }, []string{"-broker", b.URL(), "-ca", b.CAFile(), expired.Code}, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			h := startHost(t, tt.display, tt.args...)
			if code := h.wait(t, 20*time.Second); code == 0 {
				t.Fatalf("exit code 0; stderr:\n%s", h.stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(h.stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "Tether: ") || !strings.Contains(last, tt.want) {
				t.Fatalf("last stderr line %q does not say %q; all:\n%s", last, tt.want, h.stderr.String())
			}
		})
	}
	// The first host is unaffected by the failed attempts, and the code
	// the others failed with was never used: its session ended when the
	// clock passed its expiry (within a second), unjoined.
	if s, err := c.Session(ctx, used.ID); err != nil || s.State != "active" {
		t.Fatalf("first session state = %v, %v; want active", s, err)
	}
	var s *client.SessionInfo
	waitFor(t, 3*time.Second, func() bool {
		s, err = c.Session(ctx, fresh.ID)
		return err == nil && s.State == "ended"
	})
	if !strings.Contains(s.EndReason, "expired before the user joined") {
		t.Fatalf("the failed hosts' session is %+v; want ended unjoined", s)
	}
}

// TestEndReasonIsPlainText: the reason a technician gives for ending
// reaches the user's terminal and the trail as words, never as terminal
// commands: an escape sequence could retitle the user's terminal, recolour
// it or, through OSC 52, write their clipboard, though they allowed
// nothing of the kind. The session still ends.
func TestEndReasonIsPlainText(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	b := startBroker(t)
	c := b.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, tt := range []struct{ reason, want string }{
		{"fixed the printer", "Session ended: The technician ended the session: fixed the printer"},
		{"bye\x1b]0;PWNED\x07\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[31mRED", "Session ended: The technician ended the session."},
	} {
		sess, err := c.CreateSession(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		host := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
		j, err := c.Join(ctx, sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		// The host is in and has answered: a session is active once its
		// code is taken, before the host has joined it.
		if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return len(p.Granted) > 0 }); err != nil {
			t.Fatalf("the host never answered: %v\n%s", err, host.stderr.String())
		}
		if err := j.End(tt.reason); err != nil {
			t.Fatal(err)
		}
		host.wait(t, 15*time.Second)
		j.Close()
		// The host's own window titles aside, no escape reaches the terminal.
		out := regexp.MustCompile("\x1b\\]0;Tether: (SHARING this computer|paused, nothing shared|nothing shared|session ended)\x07").ReplaceAllString(host.stdout.String(), "")
		if !strings.Contains(out, tt.want) || strings.Contains(out, "\x1b") || strings.Contains(out, "PWNED") {
			t.Errorf("reason %q: the user's terminal shows %q, want %q", tt.reason, out, tt.want)
		}
		var trail struct {
			Events []struct {
				Type   string
				Detail map[string]any
			}
		}
		getJSON(t, ctx, b, b.URL()+"/api/v1/sessions/"+sess.ID+"/events", &trail)
		for _, e := range trail.Events {
			if e.Type == "session.ended" && strings.ContainsAny(fmt.Sprint(e.Detail["reason"]), "\x1b\x07") {
				t.Errorf("the trail keeps the escape sequence: %q", e.Detail["reason"])
			}
		}
	}
}

// TestHostRefusesSudo: a user who runs the host with sudo (a common reflex
// after "permission denied") would hand the technician a root shell; the
// host stops before it uses the code and says to run it as themselves.
// TestHostStoppedWhileConnecting: Ctrl+C while the host still waits for
// a support server that does not answer is the user stopping, not an
// error: the host says nothing was shared, and exits at once.
func TestHostStoppedWhileConnecting(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	silent, err := net.Listen("tcp", "127.0.0.1:0") // takes connections, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	h := startHost(t, display, "-broker", "https://"+silent.Addr().String(), "482193075")
	time.Sleep(time.Second)
	h.cmd.Process.Signal(os.Interrupt)
	if code := h.wait(t, 5*time.Second); code != 130 {
		t.Errorf("exit code %d after Ctrl+C while connecting, want 130", code)
	}
	if !strings.Contains(h.stdout.String(), "Stopped before the session began: nothing was shared.") || strings.Contains(h.stderr.String(), "Tether:") {
		t.Errorf("after Ctrl+C while connecting the user reads:\n%s\n%s", h.stdout.String(), h.stderr.String())
	}
}

func TestHostRefusesSudo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: sudo runs the host as root")
	}
	display := xtest.StartXvfb(t, 640, 480)
	b := startBroker(t)
	s, err := b.client(t).CreateSession(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	// su sets none of sudo's variables but keeps the desktop's runtime
	// folder, which is the user's.
	runtime := t.TempDir()
	if err := os.Chown(runtime, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"SUDO_UID=1000", "PKEXEC_UID=1000", "DOAS_USER=alice", "XDG_RUNTIME_DIR=" + runtime} {
		h := runHostEnv(t, display, true, []string{env}, "-broker", b.URL(), "-ca", b.CAFile(), s.Code)
		if code := h.wait(t, 20*time.Second); code == 0 || !strings.Contains(h.stderr.String(), "Run the host as yourself, without sudo") {
			t.Fatalf("%s: exit %d, stderr:\n%s", env, code, h.stderr.String())
		}
	}
	// Root's own desktop session is the user's own account: it shares.
	h := runHostEnv(t, display, true, nil, "-broker", b.URL(), "-ca", b.CAFile(), s.Code)
	waitState(t, b.client(t), s.ID, "active", h)
}

func waitState(t *testing.T, c *client.Client, id, state string, h *hostProc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		s, err := c.Session(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if s.State == state {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("session %s never became %s; host stderr:\n%s", id, state, h.stderr.String())
}

// TestHostDisplayGoneEndsSession: when the user's desktop goes away
// mid-session (they log out, the X server stops), the session ends on both
// sides and the host exits, instead of keeping its grants with no window
// left for the user to stop it from; also while paused, when nothing is
// captured.
func TestHostDisplayGoneEndsSession(t *testing.T) {
	b := startBroker(t)
	c := b.client(t)
	for _, command := range []string{"", "pause"} {
		t.Run(map[string]string{"": "sharing", "pause": "paused"}[command], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			x := xtest.StartXvfbServer(t, 640, 480)
			sess, err := c.CreateSession(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			host := startHost(t, x.Display, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
			j, err := c.Join(ctx, sess.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if _, err := j.Screenshot(ctx); err != nil {
				t.Fatalf("screenshot: %v\n%s", err, host.stderr.String())
			}
			if command != "" {
				host.typeLine(t, command)
				host.waitOutput(t, "PAUSED", 1, 10*time.Second)
			}
			x.Stop()
			if code := host.wait(t, 15*time.Second); code != 0 {
				t.Fatalf("host exit code %d after the display went away; stderr:\n%s", code, host.stderr.String())
			}
			if out := host.stdout.String(); !strings.Contains(out, "Session ended: Your desktop closed (the display went away).") {
				t.Errorf("the host's terminal does not say why the session ended:\n%s", out)
			}
			const why = "The user's desktop closed (the display went away)."
			select {
			case <-j.Done():
				if j.EndReason() != why {
					t.Errorf("the technician was told %q, want %q", j.EndReason(), why)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the technician was not told the session ended")
			}
			s, err := c.Session(ctx, sess.ID)
			if err != nil {
				t.Fatal(err)
			}
			if s.State != "ended" || s.EndReason != why {
				t.Errorf("session %s, ended %q; want %q", s.State, s.EndReason, why)
			}
		})
	}
}

// TestHostJoinLinkAsCode: the user who got a join link and gives it to the
// host where the code goes joins with the link's code, on the link's
// broker.
func TestHostJoinLinkAsCode(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	b := startBroker(t)
	c := b.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := c.CreateSession(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(sess.JoinURL, "/join/"+sess.Code) {
		t.Fatalf("join_url %q", sess.JoinURL)
	}
	host := startHost(t, display, "-ca", b.CAFile(), sess.JoinURL)
	waitState(t, c, sess.ID, "active", host)
	host.cmd.Process.Signal(os.Interrupt)
	host.wait(t, 10*time.Second)

	// As a browser's address bar may give it, with a slash at the end.
	sess, err = c.CreateSession(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	host = startHost(t, display, "-ca", b.CAFile(), sess.JoinURL+"/")
	waitState(t, c, sess.ID, "active", host)
	host.cmd.Process.Signal(os.Interrupt)
	host.wait(t, 10*time.Second)
}

// TestHostFlagsAfterCode: the code first and the flags after it, as users
// type it (and in groups, as it is read out), joins as well as the flags
// first.
func TestHostFlagsAfterCode(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	b := startBroker(t)
	c := b.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, grouped := range []bool{false, true} {
		sess, err := c.CreateSession(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		code := []string{sess.Code}
		if grouped {
			code = []string{sess.Code[:3], sess.Code[3:6], sess.Code[6:]}
		}
		host := startHost(t, display, append(code, "-broker", b.URL(), "-ca", b.CAFile())...)
		waitState(t, c, sess.ID, "active", host)
		host.cmd.Process.Signal(os.Interrupt)
		host.wait(t, 10*time.Second)
	}
}
