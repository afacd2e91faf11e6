package e2e

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// Window titles of the host's desktop front end.
const (
	dialogQuestion = "Tether: remote support request"
	dialogSharing  = "Tether: sharing this computer"
	dialogCode     = "Tether: your support code"
	dialogEnded    = "Tether: session ended"
	dialogFailed   = "Tether: the support session could not go on"
)

// desktop runs the host without a terminal, as from a desktop launcher, so
// that it speaks through dialogs (zenity), and works them with xdotool.
type desktop struct {
	t       *testing.T
	ctx     context.Context
	display string
	host    *exec.Cmd
	out     syncBuffer
	exited  chan error
}

func startDesktopHost(t *testing.T, ctx context.Context, display string, args ...string) *desktop {
	t.Helper()
	d := &desktop{t: t, ctx: ctx, display: display, exited: make(chan error, 1)}
	d.host = exec.Command(xtest.Build(t, "./host"), args...)
	d.host.Env = append(os.Environ(), "DISPLAY="+display)
	d.host.Stdout, d.host.Stderr = &d.out, &d.out // standard input is /dev/null
	if err := d.host.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.host.Wait() }()
	t.Cleanup(func() {
		d.host.Process.Kill()
		<-d.exited
	})
	return d
}

func (d *desktop) xdo(args ...string) string {
	d.t.Helper()
	cmd := exec.CommandContext(d.ctx, "xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+d.display)
	got, err := cmd.Output()
	if err != nil {
		d.t.Fatalf("xdotool %v: %v\nhost:\n%s", args, err, d.out.String())
	}
	return strings.TrimSpace(string(got))
}

// find waits for a visible window titled title and returns its id. A
// window that closes while xdotool reads it (a question taken down as the
// session ends) makes xdotool fail with BadWindow: it looks again.
func (d *desktop) find(title string) string {
	d.t.Helper()
	for {
		cmd := exec.CommandContext(d.ctx, "xdotool", "search", "--sync", "--onlyvisible", "--name", title)
		cmd.Env = append(os.Environ(), "DISPLAY="+d.display)
		out, err := cmd.Output()
		if ids := strings.Fields(string(out)); err == nil && len(ids) > 0 {
			return ids[0]
		}
		if d.ctx.Err() != nil {
			var stderr []byte
			if exit, ok := err.(*exec.ExitError); ok {
				stderr = exit.Stderr
			}
			d.t.Fatalf("no window %q: %v %s\nhost:\n%s", title, err, stderr, d.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// window waits for the window titled title and returns its id and size.
func (d *desktop) window(title string) (id string, w, h int) {
	d.t.Helper()
	id = d.find(title)
	g := d.geometry(id)
	time.Sleep(500 * time.Millisecond) // drawn
	return id, g["WIDTH"], g["HEIGHT"]
}

// geometry returns a window's X, Y, WIDTH and HEIGHT on the screen.
func (d *desktop) geometry(id string) map[string]int {
	d.t.Helper()
	g := map[string]int{}
	for _, line := range strings.Split(d.xdo("getwindowgeometry", "--shell", id), "\n") {
		k, v, _ := strings.Cut(line, "=")
		g[k], _ = strconv.Atoi(v)
	}
	return g
}

func (d *desktop) visible(title string) bool {
	cmd := exec.CommandContext(d.ctx, "xdotool", "search", "--onlyvisible", "--name", title)
	cmd.Env = append(os.Environ(), "DISPLAY="+d.display)
	return cmd.Run() == nil
}

func (d *desktop) click(id string, x, y int) {
	d.t.Helper()
	d.xdo("mousemove", "--window", id, strconv.Itoa(x), strconv.Itoa(y), "click", "1")
	time.Sleep(200 * time.Millisecond)
}

// exitCode waits for the host to exit.
func (d *desktop) exitCode(timeout time.Duration) int {
	d.t.Helper()
	select {
	case err := <-d.exited:
		d.exited <- err // for Cleanup
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return 0
	case <-time.After(timeout):
		d.t.Fatalf("the host is still running after %s:\n%s", timeout, d.out.String())
	}
	return -1
}

// desktopSession starts a broker and a session for ticket that asks for
// view and control, and the host, as from a desktop launcher with
// hostArgs, on a display of its own; it returns the host and the
// technician's side, joined.
func desktopSession(t *testing.T, ctx context.Context, ticket string, hostArgs ...string) (*desktop, *client.Joined) {
	t.Helper()
	return desktopSessionOn(t, ctx, xtest.StartXvfb(t, 1024, 768), ticket, hostArgs...)
}

// desktopSessionOn is desktopSession on a display the test started.
func desktopSessionOn(t *testing.T, ctx context.Context, display, ticket string, hostArgs ...string) (*desktop, *client.Joined) {
	t.Helper()
	b := startBroker(t)
	c := b.client(t)
	sess, err := c.CreateSession(ctx, ticket, protocol.PermView, protocol.PermControl)
	if err != nil {
		t.Fatal(err)
	}
	d := startDesktopHost(t, ctx, display, append(hostArgs, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)...)
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return d, j
}

// TestConsentDialog: the user ticks view only and allows it; later takes
// it back from the sharing window.
func TestConsentDialog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	d, j := desktopSession(t, ctx, "INC-DIALOG", "-v") // -v: its account is checked below
	// The question, alone on the screen (nothing is shared yet, so there
	// is no sharing window to cover it): a checklist under two lines of
	// text, nothing ticked, Allow at the bottom right.
	ask, w, h := d.window(dialogQuestion)
	if d.visible(dialogSharing) {
		t.Fatal("a sharing window is up before anything is shared")
	}
	d.click(ask, 40, 89)     // the first row's box: view
	d.click(ask, w-51, h-25) // Allow
	answered, cancelAnswer := context.WithTimeout(ctx, 20*time.Second)
	defer cancelAnswer()
	p, err := j.WaitPermissions(answered, func(p protocol.Permissions) bool { return !p.Pending && p.Message != "" })
	if err != nil {
		t.Fatalf("no answer from the dialog (did the clicks miss its box and button?): %v\nhost:\n%s", err, d.out.String())
	}
	if !slices.Equal(p.Granted, []string{protocol.PermView}) {
		t.Fatalf("granted %v, want view alone\nhost:\n%s", p.Granted, d.out.String())
	}
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatalf("screenshot after the grant: %v", err)
	}

	// Now the sharing window: pause, take back view, end; the user takes
	// view back, and with nothing shared the window goes.
	share, w, h := d.window(dialogSharing)
	d.click(share, 25, 47+23*1) // revoke view
	d.click(share, w-86, h-25)  // Do it
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return !slices.Contains(p.Granted, protocol.PermView) }); err != nil {
		t.Fatalf("view not revoked: %v\nhost:\n%s", err, d.out.String())
	}
	time.Sleep(time.Second)
	if d.visible(dialogSharing) {
		t.Error("the sharing window stays up with nothing shared")
	}
	if out := d.out.String(); !strings.Contains(out, `"front end"="dialog (zenity)"`) || !strings.Contains(out, "revoked view") {
		t.Errorf("the host's own account:\n%s", out)
	}
}

// TestTechnicianCannotHideSharingWindow: the sharing window is on the
// shared screen, where a technician in control can click too: their click
// on Hide for a minute brings it straight back, saying only the user can
// hide it; the user's own click hides it.
func TestTechnicianCannotHideSharingWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	d, j := desktopSession(t, ctx, "INC-HIDE")
	d.allowControl(j)

	// The technician clicks Hide for a minute, where the video shows it.
	x, y := d.sharingWindowHide()
	for _, down := range []bool{true, false} {
		if err := j.SendInput(ctx, protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: down, X: x, Y: y}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	if !d.visible(dialogSharing) {
		t.Fatalf("a technician's click on Hide hid the sharing window:\n%s", d.out.String())
	}
	if !strings.Contains(d.out.String(), "sharing window closed just after a technician") {
		t.Fatalf("the window did not close and come back (did the click miss Hide?):\n%s", d.out.String())
	}

	// The user's own click hides it.
	time.Sleep(hideGuardForTest)
	x, y = d.sharingWindowHide()
	d.xdo("mousemove", strconv.Itoa(x), strconv.Itoa(y), "click", "1")
	time.Sleep(time.Second)
	if d.visible(dialogSharing) {
		t.Errorf("the user's own click on Hide left the window up:\n%s", d.out.String())
	}
}

// allowControl has the user allow view and control in the question, and
// the technician take control.
func (d *desktop) allowControl(j *client.Joined) {
	d.t.Helper()
	ask, w, h := d.window(dialogQuestion)
	d.click(ask, 40, 89)     // view
	d.click(ask, 40, 89+23)  // control
	d.click(ask, w-51, h-25) // Allow
	if _, err := j.WaitPermissions(d.ctx, func(p protocol.Permissions) bool { return slices.Contains(p.Granted, protocol.PermControl) }); err != nil {
		d.t.Fatalf("control not granted: %v\nhost:\n%s", err, d.out.String())
	}
	if ok, reason, err := j.TakeControl(d.ctx, true); err != nil || !ok {
		d.t.Fatalf("take control: %v %s", err, reason)
	}
}

// TestSharingWindowStaysInSight: on a desktop with a window manager, a
// technician in control could cover the sharing window with a window of
// theirs, or minimise it. It stays above their windows, comes back over
// one they set "always on top", and minimised just after their click it is
// straight back; the user's own raise and minimise stay.
func TestSharingWindowStaysInSight(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	display := xtest.StartXvfb(t, 1024, 768)
	startOpenbox(t, display)
	d, j := desktopSessionOn(t, ctx, display, "INC-ABOVE")
	d.allowControl(j)

	// The technician opens a window over the sharing window and raises it.
	share, w, h := d.window(dialogSharing)
	g := d.geometry(share)
	term := d.xterm("technician's window")
	d.xdo("windowmove", term, strconv.Itoa(g["X"]), strconv.Itoa(g["Y"]))
	d.xdo("windowsize", term, strconv.Itoa(w+150), strconv.Itoa(h+150))
	d.xdo("windowactivate", "--sync", term)
	d.xdo("windowraise", term)
	time.Sleep(500 * time.Millisecond)
	if stack := d.stacking(); slices.Index(stack, d.id(share)) < slices.Index(stack, d.id(term)) {
		t.Errorf("the technician's window is above the sharing window (stacking, bottom to top: %v; sharing %s, technician's %s)\nhost:\n%s",
			stack, share, term, d.out.String())
	}
	if state := d.xprop(share, "_NET_WM_STATE"); !strings.Contains(state, "_NET_WM_STATE_ABOVE") {
		t.Errorf("the sharing window is not kept above: %s", state)
	}

	// The technician clicks on their window, beside the sharing window.
	tg := d.geometry(term)
	click := func() {
		t.Helper()
		for _, down := range []bool{true, false} {
			ev := protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: down,
				X: tg["X"] + tg["WIDTH"] - 40, Y: tg["Y"] + tg["HEIGHT"] - 40}
			if err := j.SendInput(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond) // the click went in
	}
	// Minimised just after, the sharing window comes straight back.
	click()
	d.xdo("windowminimize", share)
	if !d.within(5*time.Second, func() bool { return d.visible(dialogSharing) }) {
		t.Fatalf("minimised just after a technician's click, the sharing window stays minimised:\n%s", d.out.String())
	}
	if !strings.Contains(d.out.String(), "minimised just after a technician") {
		t.Fatalf("the window is up, but was it ever minimised?\n%s", d.out.String())
	}

	// The technician sets their window "always on top" from the window
	// menu and raises it: it shares the layer kept above, and covers the
	// sharing window. At their click the sharing window comes back over it.
	time.Sleep(hideGuardForTest)
	share, _, _ = d.window(dialogSharing)
	d.keepAbove(term)
	d.xdo("windowraise", term)
	click()
	onTop := func() bool { stack := d.stacking(); return stack[len(stack)-1] == d.id(share) }
	if !d.within(5*time.Second, onTop) {
		t.Fatalf("a technician's window kept above stays over the sharing window (stacking, bottom to top: %v; sharing %s, technician's %s)\nhost:\n%s",
			d.stacking(), share, term, d.out.String())
	}
	if !strings.Contains(d.out.String(), "was over the sharing window") {
		t.Fatalf("the sharing window is on top, but was it ever covered?\n%s", d.out.String())
	}

	// With no technician's input for a while, what the user does stays:
	// their window kept above raised over the sharing window, and the
	// sharing window minimised.
	time.Sleep(hideGuardForTest)
	d.xdo("windowraise", term)
	if d.within(2*time.Second, onTop) {
		t.Errorf("the user raised a window kept above, and the sharing window came back over it:\n%s", d.out.String())
	}
	share, _, _ = d.window(dialogSharing)
	d.xdo("windowminimize", share)
	if !d.within(5*time.Second, func() bool { return !d.visible(dialogSharing) }) {
		t.Fatalf("the sharing window was not minimised")
	}
	if d.within(3*time.Second, func() bool { return d.visible(dialogSharing) }) {
		t.Errorf("the user minimised the sharing window, and it came back:\n%s", d.out.String())
	}
}

// startOpenbox runs the openbox window manager on display and returns once
// it manages windows. Cleanup stops it.
func startOpenbox(t *testing.T, display string) {
	t.Helper()
	if _, err := exec.LookPath("openbox"); err != nil {
		t.Skip("openbox is not installed (Debian package openbox): `make test` installs it")
	}
	cmd := exec.Command("openbox", "--sm-disable")
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start openbox: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		check := exec.Command("xprop", "-root", "_NET_SUPPORTING_WM_CHECK")
		check.Env = cmd.Env
		if out, _ := check.Output(); strings.Contains(string(out), "window id") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("openbox does not manage the display after 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// xterm opens a terminal window titled title and returns its id. Cleanup
// closes it.
func (d *desktop) xterm(title string) string {
	d.t.Helper()
	cmd := exec.Command("xterm", "-title", title)
	cmd.Env = append(os.Environ(), "DISPLAY="+d.display)
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start xterm (Debian package xterm): %v", err)
	}
	d.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return d.find(title)
}

func (d *desktop) xprop(id, prop string) string {
	d.t.Helper()
	args := []string{"-root", prop}
	if id != "" {
		args = []string{"-id", id, prop}
	}
	cmd := exec.CommandContext(d.ctx, "xprop", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+d.display)
	out, err := cmd.Output()
	if err != nil {
		d.t.Fatalf("xprop %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// keepAbove asks the window manager to keep window above the others, as
// its window menu's "Always on top" does (EWMH _NET_WM_STATE, add).
func (d *desktop) keepAbove(window string) {
	d.t.Helper()
	c, err := xgb.NewConnDisplay(d.display)
	if err != nil {
		d.t.Fatal(err)
	}
	defer c.Close()
	atom := func(name string) xproto.Atom {
		r, err := xproto.InternAtom(c, false, uint16(len(name)), name).Reply()
		if err != nil {
			d.t.Fatal(err)
		}
		return r.Atom
	}
	ev := xproto.ClientMessageEvent{Format: 32, Window: xproto.Window(d.id(window)), Type: atom("_NET_WM_STATE"),
		Data: xproto.ClientMessageDataUnionData32New([]uint32{1, uint32(atom("_NET_WM_STATE_ABOVE")), 0, 2, 0})} // add; 2: as a pager
	root := xproto.Setup(c).DefaultScreen(c).Root
	if err := xproto.SendEventChecked(c, false, root, xproto.EventMaskSubstructureRedirect|xproto.EventMaskSubstructureNotify, string(ev.Bytes())).Check(); err != nil {
		d.t.Fatal(err)
	}
	if !d.within(5*time.Second, func() bool { return strings.Contains(d.xprop(window, "_NET_WM_STATE"), "_NET_WM_STATE_ABOVE") }) {
		d.t.Fatalf("the window manager did not keep the technician's window above: %s", d.xprop(window, "_NET_WM_STATE"))
	}
}

// stacking returns the window manager's windows, bottom to top.
func (d *desktop) stacking() []uint64 {
	d.t.Helper()
	_, list, _ := strings.Cut(d.xprop("", "_NET_CLIENT_LIST_STACKING"), "#")
	var ids []uint64
	for _, f := range strings.Split(list, ",") {
		id, err := strconv.ParseUint(strings.TrimSpace(f), 0, 32)
		if err != nil {
			d.t.Fatalf("_NET_CLIENT_LIST_STACKING: %q", list)
		}
		ids = append(ids, id)
	}
	return ids
}

// id is xdotool's window id as a number.
func (d *desktop) id(window string) uint64 {
	d.t.Helper()
	id, err := strconv.ParseUint(window, 10, 32)
	if err != nil {
		d.t.Fatalf("window id %q: %v", window, err)
	}
	return id
}

// within says whether cond holds within timeout.
func (d *desktop) within(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// hideGuardForTest outlasts the host's guard against a technician's click
// hiding the sharing window.
const hideGuardForTest = 2500 * time.Millisecond

// sharingWindowHide waits for the sharing window and returns where its
// Hide for a minute button is on the screen.
func (d *desktop) sharingWindowHide() (x, y int) {
	d.t.Helper()
	id, w, h := d.window(dialogSharing)
	g := d.geometry(id)
	return g["X"] + w - 210, g["Y"] + h - 25
}

// TestDialogCodeAndEnd: without a terminal, what the user must read is in
// a window: the support code until a technician enters it, the end of the
// session, and why the host could not go on.
func TestDialogCodeAndEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	display := xtest.StartXvfb(t, 1024, 768)
	b := startBroker(t)
	d := startDesktopHost(t, ctx, display, "-broker", b.URL(), "-ca", b.CAFile())
	d.window(dialogCode)
	m := shownCode.FindStringSubmatch(d.out.String())
	if m == nil {
		t.Fatalf("no code shown:\n%s", d.out.String())
	}
	status, resp := apiCall(t, b.httpClient(t), "POST", b.URL()+"/api/v1/sessions/claim", b.admin.APIKey,
		`{"code":"`+m[1]+m[2]+m[3]+`","ticket":{"id":"INC-DESK"}}`, nil)
	if status != 201 {
		t.Fatalf("claim: %d %v", status, resp)
	}
	waitFor(t, 10*time.Second, func() bool { return !d.visible(dialogCode) })
	if err := b.client(t).EndSession(ctx, resp["id"].(string)); err != nil {
		t.Fatal(err)
	}
	ended, _, _ := d.window(dialogEnded)
	d.xdo("windowkill", ended) // the user closes it
	if code := d.exitCode(10 * time.Second); code != 0 {
		t.Errorf("exit code %d after the session ended:\n%s", code, d.out.String())
	}

	// The code's window stays up (it gave up after a minute, and the user
	// had nothing left to stop waiting from); its button stops waiting.
	d = startDesktopHost(t, ctx, display, "-broker", b.URL(), "-ca", b.CAFile())
	shown, w, h := d.window(dialogCode)
	d.click(shown, w-60, h-25) // Stop waiting
	ended, _, _ = d.window(dialogEnded)
	d.xdo("windowkill", ended)
	d.exitCode(10 * time.Second)
	if !strings.Contains(d.out.String(), "You stopped waiting for your technician") {
		t.Errorf("the code's Stop waiting:\n%s", d.out.String())
	}

	// A broker that does not answer: the user is told why, then the host
	// exits with an error.
	d = startDesktopHost(t, ctx, display, "-broker", "https://127.0.0.1:1", "-ca", b.CAFile())
	failed, _, _ := d.window(dialogFailed)
	d.xdo("windowkill", failed)
	if code := d.exitCode(10 * time.Second); code != 1 || !strings.Contains(d.out.String(), "Could not reach the support server") {
		t.Errorf("exit code %d:\n%s", code, d.out.String())
	}
}

// TestDesktopHostWithoutDisplay: started with neither a terminal nor a
// display, with zenity installed, the host says that the display is
// missing, not to install zenity.
func TestDesktopHostWithoutDisplay(t *testing.T) {
	if _, err := exec.LookPath("zenity"); err != nil {
		t.Fatal("zenity is not installed (Debian package zenity): run `make test`, which installs it")
	}
	host := exec.Command(xtest.Build(t, "./host"), "-broker", "https://127.0.0.1:1", "123456789")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISPLAY=") {
			host.Env = append(host.Env, kv)
		}
	}
	out, err := host.CombinedOutput() // standard input is /dev/null
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "DISPLAY is not set") || strings.Contains(string(out), "install zenity") {
		t.Fatalf("the host says:\n%s", out)
	}
}
