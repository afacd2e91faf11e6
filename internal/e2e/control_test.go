package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// liveSession starts a broker and a host on display and joins it as the
// admin; the session is active when it returns.
func liveSession(t *testing.T, ctx context.Context, display string) (*broker, *client.Client, *client.Joined, *hostProc) {
	t.Helper()
	b := startBroker(t)
	c, j, host := joinLive(t, ctx, b, func(code string) *hostProc {
		return startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), code)
	})
	return b, c, j, host
}

// joinLive creates a session on b, starts its host with start(code) and
// joins it as the admin; the session is active when it returns.
func joinLive(t *testing.T, ctx context.Context, b *broker, start func(code string) *hostProc) (*client.Client, *client.Joined, *hostProc) {
	t.Helper()
	c := b.client(t)
	_, j, host := joinLiveAs(t, ctx, c, start)
	return c, j, host
}

// joinLiveAs is joinLive as c's user: it creates the session with c and
// returns it with the connection and the host.
func joinLiveAs(t *testing.T, ctx context.Context, c *client.Client, start func(code string) *hostProc) (*client.SessionInfo, *client.Joined, *hostProc) {
	t.Helper()
	sess, err := c.CreateSession(ctx, "INC-CTRL")
	if err != nil {
		t.Fatal(err)
	}
	host := start(sess.Code)
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatalf("no video: %v\nhost:\n%s", err, host.stderr.String())
	}
	return sess, j, host
}

func send(t *testing.T, ctx context.Context, j *client.Joined, evs ...protocol.InputEvent) {
	t.Helper()
	for _, ev := range evs {
		if err := j.SendInput(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
}

func key(code string, down bool) protocol.InputEvent {
	return protocol.InputEvent{Kind: protocol.InputKey, Code: code, Down: down}
}

func tap(codes ...string) []protocol.InputEvent {
	var evs []protocol.InputEvent
	for _, c := range codes {
		evs = append(evs, key(c, true), key(c, false))
	}
	return evs
}

// TestRemoteControl: clicks land on the right pixels, typed text with
// shifted characters arrives, held keys are released when the technician
// leaves, and the clipboard crosses both ways.
func TestRemoteControl(t *testing.T) {
	display := xtest.StartXvfb(t, 1280, 720)
	w := xtest.StartInputWitness(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, c, j, host := liveSession(t, ctx, display)

	// Before control is granted, input is refused by the broker.
	send(t, ctx, j, protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 5, Y: 5})
	if _, err := j.WaitControl(ctx, protocol.ControlInputDropped, func(m protocol.ControlMessage) bool { return m.Count >= 1 }); err != nil {
		t.Fatal(err)
	}
	if ok, reason, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatalf("take control: %v %q %v", ok, reason, err)
	}

	w.Skip()
	send(t, ctx, j,
		protocol.InputEvent{Kind: protocol.InputMove, X: 321, Y: 123},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 321, Y: 123},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: false, X: 321, Y: 123},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonRight, Down: true, X: 1279, Y: 719},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonRight, Down: false, X: 1279, Y: 719},
		protocol.InputEvent{Kind: protocol.InputWheel, DY: 1},
		protocol.InputEvent{Kind: protocol.InputWheel, DX: 1},
		protocol.InputEvent{Kind: protocol.InputWheel, DX: -1},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonBack, Down: true, X: 10, Y: 20},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonBack, Down: false, X: 10, Y: 20},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonForward, Down: true, X: 10, Y: 20},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonForward, Down: false, X: 10, Y: 20},
	)
	w.Wait(t, `^button 1 down 321 123$`, 10*time.Second)
	w.Wait(t, `^button 1 up 321 123$`, 5*time.Second)
	w.Wait(t, `^button 3 down 1279 719$`, 5*time.Second)
	w.Wait(t, `^wheel down$`, 5*time.Second)
	w.Wait(t, `^wheel right$`, 5*time.Second)
	w.Wait(t, `^wheel left$`, 5*time.Second)
	w.Wait(t, `^button 8 down 10 20$`, 5*time.Second)
	w.Wait(t, `^button 8 up 10 20$`, 5*time.Second)
	w.Wait(t, `^button 9 down 10 20$`, 5*time.Second)
	w.Wait(t, `^button 9 up 10 20$`, 5*time.Second)

	// Physical keys with Shift: "Hi!" then a character without a key.
	var evs []protocol.InputEvent
	evs = append(evs, key("ShiftLeft", true))
	evs = append(evs, tap("KeyH")...)
	evs = append(evs, key("ShiftLeft", false))
	evs = append(evs, tap("KeyI")...)
	evs = append(evs, key("ShiftRight", true))
	evs = append(evs, tap("Digit1")...)
	evs = append(evs, key("ShiftRight", false))
	send(t, ctx, j, evs...)
	for _, want := range []string{`^text H$`, `^text i$`, `^text !$`} {
		w.Wait(t, want, 5*time.Second)
	}

	// Text with a line break and a tab, as a paste of two lines: Enter and
	// Tab are pressed for them. Then emoji, from an emoji picker.
	send(t, ctx, j, protocol.InputEvent{Kind: protocol.InputText, Text: "ok\nné\tx"})
	send(t, ctx, j, protocol.InputEvent{Kind: protocol.InputText, Text: "👍😀!"})
	for _, want := range []string{`^text o$`, `^text k$`, `^key down 36 Return$`, `^text n$`, `^text é$`, `^key down 23 Tab$`, `^text x$`,
		`^text 👍$`, `^text 😀$`, `^text !$`} {
		w.Wait(t, want, 5*time.Second)
	}

	// A forged or broken event is dropped by the broker; nothing arrives.
	if err := j.SendRawInput(ctx, []byte{protocol.InputButton, 9, 1, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}

	// Control held when the technician's page goes away: released on the host.
	w.Skip()
	send(t, ctx, j, key("ControlLeft", true))
	w.Wait(t, `^key down \d+ Control_L$`, 5*time.Second)
	j.Close()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("host stderr:\n" + host.stderr.String())
		}
	})
	w.Wait(t, `^key up \d+ Control_L$`, 10*time.Second)

	// A second visit: clipboard both ways.
	j2, err := c.Join(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	// The user is asked again; control can be taken once granted.
	if _, err := j2.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, "control") }); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := j2.TakeControl(ctx, true); err != nil || !ok {
		t.Fatalf("take control again: %v %v", ok, err)
	}
	if err := j2.SendControl(ctx, protocol.ControlMessage{Type: protocol.ControlClipboard, Text: "from the technician ✓"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return xclipRead(t, display) == "from the technician ✓" })
	xclipWrite(t, display, "copied by the user")
	if _, err := j2.WaitControl(ctx, protocol.ControlClipboard, func(m protocol.ControlMessage) bool { return m.Text == "copied by the user" }); err != nil {
		t.Fatalf("host clipboard change never reached the technician: %v\nhost:\n%s", err, host.stderr.String())
	}
}

// TestViewOnlyCannotInject: a technician who has not taken control, and a
// supervisor who may not, get nothing done on the host.
func TestViewOnlyCannotInject(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	w := xtest.StartInputWitness(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, _, j, _ := liveSession(t, ctx, display)

	if err := b.CreateUser(ctx, "sam", "supervisor-password", "supervisor"); err != nil {
		t.Fatal(err)
	}
	sup := b.login(t, ctx, "sam", "supervisor-password")
	js, err := sup.Join(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer js.Close()
	if ok, reason, err := js.TakeControl(ctx, true); err != nil || ok || !strings.Contains(reason, "view-only") {
		t.Fatalf("supervisor took control: %v %q %v", ok, reason, err)
	}
	mark := len(w.Lines())
	for _, jj := range []*client.Joined{j, js} {
		send(t, ctx, jj,
			protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 10, Y: 10},
			protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: false, X: 10, Y: 10},
			key("KeyA", true), key("KeyA", false))
		if err := jj.SendControl(ctx, protocol.ControlMessage{Type: protocol.ControlClipboard, Text: "forged"}); err != nil {
			t.Fatal(err)
		}
		if _, err := jj.WaitControl(ctx, protocol.ControlInputDropped, func(m protocol.ControlMessage) bool { return m.Count >= 1 }); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	noInputSince(t, w, mark, "view-only input")
	if got := xclipRead(t, display); got == "forged" {
		t.Fatal("view-only clipboard reached the host")
	}
}

// TestDisplaySwitch: the host lists two monitors; switching shares the
// other one, and clicks map to it.
func TestDisplaySwitch(t *testing.T) {
	display := xtest.StartXvfb(t, 2560, 1080)
	mons := xtest.SplitMonitors(t, display)
	w := xtest.StartInputWitness(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _, j, _ := liveSession(t, ctx, display)

	m, err := j.WaitControl(ctx, protocol.ControlDisplays, func(m protocol.ControlMessage) bool { return len(m.Displays) == 2 })
	if err != nil {
		t.Fatal(err)
	}
	if d := m.Displays[1]; d.X != mons[1].X || d.Width != mons[1].Width || m.Current != 0 {
		t.Fatalf("displays = %+v, monitors %+v", m, mons)
	}
	if ok, _, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatal("take control", err)
	}
	if err := j.SendControl(ctx, protocol.ControlMessage{Type: protocol.ControlDisplaySelect, Index: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.WaitControl(ctx, protocol.ControlDisplays, func(m protocol.ControlMessage) bool { return m.Current == 1 }); err != nil {
		t.Fatal(err)
	}
	img, err := j.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Dx(); got != mons[1].Width {
		t.Fatalf("after the switch the picture is %d wide, want %d", got, mons[1].Width)
	}
	w.Skip()
	send(t, ctx, j,
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 10, Y: 20},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: false, X: 10, Y: 20})
	w.Wait(t, `^button 1 down `+itoa(mons[1].X+10)+` 20$`, 10*time.Second)
}

// TestControlAfterResize: the user changes their screen's resolution in
// the middle of a session; the technician's clicks land where they point
// on the new screen, also on the part the old one did not have.
func TestControlAfterResize(t *testing.T) {
	display := xtest.StartXvfb(t, 1280, 720)
	xtest.SetMode(t, display, 800, 600)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _, j, _ := liveSession(t, ctx, display)
	if ok, _, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatal("take control", err)
	}
	xtest.SetMode(t, display, 1280, 720)
	waitFor(t, 10*time.Second, func() bool {
		img, err := j.Screenshot(ctx)
		return err == nil && img.Bounds().Dx() == 1280
	})
	w := xtest.StartInputWitness(t, display) // covering the whole new screen
	w.Skip()
	send(t, ctx, j,
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 1200, Y: 700},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: false, X: 1200, Y: 700})
	w.Wait(t, `^button 1 down 1200 700$`, 10*time.Second)
}

// TestStillScreenSendsNothing: once the picture settles, no video frame
// is sent until something changes, and a change arrives at once.
func TestStillScreenSendsNothing(t *testing.T) {
	// Mostly watching a still screen: it runs beside the other tests that
	// wait.
	t.Parallel()
	display := xtest.StartXvfb(t, 1280, 720)
	w := xtest.StartInputWitness(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _, j, _ := liveSession(t, ctx, display)
	// The frames that sharpen the first picture come 100 ms apart, for at
	// most 2 s.
	before := j.Frames()
	for settled := time.Now().Add(3 * time.Second); ; before = j.Frames() {
		time.Sleep(500 * time.Millisecond)
		if j.Frames() == before {
			break
		}
		if time.Now().After(settled) {
			t.Fatalf("frames keep coming %v after the first picture", 3*time.Second)
		}
	}
	time.Sleep(5 * time.Second)
	if got := j.Frames(); got != before {
		t.Fatalf("%d video frames sent for a still screen in 5 s", got-before)
	}
	// A click toggles the witness's colour: frames flow again.
	if ok, _, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatal("take control", err)
	}
	send(t, ctx, j,
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 100, Y: 100},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: false, X: 100, Y: 100})
	w.Wait(t, `^colour `, 5*time.Second)
	waitFor(t, 5*time.Second, func() bool { return j.Frames() > before })
}

func itoa(n int) string { return strconv.Itoa(n) }

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func xclipRead(t *testing.T, display string) string {
	cmd := exec.Command("xclip", "-o", "-selection", "clipboard")
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	out, _ := cmd.Output()
	return string(out)
}

func xclipWrite(t *testing.T, display, text string) {
	cmd := exec.Command("xclip", "-i", "-selection", "clipboard")
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	cmd.Stdin = strings.NewReader(text)
	if err := cmd.Run(); err != nil {
		t.Fatalf("xclip: %v", err)
	}
}

// noInputSince fails if the witness saw any button, key or text event
// after its first mark lines.
func noInputSince(t *testing.T, w *xtest.Witness, mark int, what string) {
	t.Helper()
	for _, l := range w.Lines()[mark:] {
		if strings.HasPrefix(l, "button") || strings.HasPrefix(l, "key") || strings.HasPrefix(l, "text") {
			t.Fatalf("%s reached the host: %q", what, l)
		}
	}
}

// TestOneInControl: one place controls the user's computer at a time. The
// technician's second connection (another console tab, a viewer command)
// taking control takes it from the first, whose held key is let go and
// whose input no longer lands; a colleague taking it takes it from both,
// and the one that had it hears who took it.
func TestOneInControl(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	w := xtest.StartInputWitness(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b, c, j, _ := liveSession(t, ctx, display)
	click := func(j *client.Joined, x, y int) {
		send(t, ctx, j,
			protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: x, Y: y},
			protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: false, X: x, Y: y})
	}
	takeControl := func(j *client.Joined) {
		t.Helper()
		if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, "control") }); err != nil {
			t.Fatal(err)
		}
		if ok, reason, err := j.TakeControl(ctx, true); err != nil || !ok {
			t.Fatalf("take control: %v %q %v", ok, reason, err)
		}
	}
	lostControl := func(j *client.Joined, why string) {
		t.Helper()
		m, err := j.WaitControl(ctx, protocol.ControlMode, func(m protocol.ControlMessage) bool { return !m.Enabled })
		if err != nil {
			t.Fatalf("not told that control moved: %v", err)
		}
		if !strings.Contains(m.Reason, why) {
			t.Fatalf("told %q, want it to say %q", m.Reason, why)
		}
	}
	// landed reports whether a click of j's reached the X server: it is
	// sent before one of other's, which does land.
	landed := func(j, other *client.Joined, x, y int) bool {
		t.Helper()
		w.Skip()
		click(j, x, y)
		time.Sleep(500 * time.Millisecond)
		click(other, x+1, y+1)
		w.Wait(t, fmt.Sprintf(`^button 1 up %d %d$`, x+1, y+1), 10*time.Second)
		return slices.Contains(w.Lines(), fmt.Sprintf("button 1 down %d %d", x, y))
	}

	takeControl(j)
	w.Skip()
	send(t, ctx, j, key("ShiftLeft", true))
	w.Wait(t, `^key down \d+ Shift_L$`, 5*time.Second)

	// The same technician takes control in a second connection.
	j2, err := c.Join(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	takeControl(j2)
	lostControl(j, "You took control in another window")
	w.Wait(t, `^key up \d+ Shift_L$`, 5*time.Second)
	if landed(j, j2, 100, 100) {
		t.Fatal("the connection that lost control still clicked on the user's computer")
	}

	// The first takes it back.
	takeControl(j)
	lostControl(j2, "You took control in another window")
	if landed(j2, j, 200, 200) {
		t.Fatal("the connection that lost control still clicked on the user's computer")
	}

	// A colleague takes it.
	if err := b.CreateUser(ctx, "lee", "l3-expert-password", "technician"); err != nil {
		t.Fatal(err)
	}
	if err := c.Invite(ctx, j.ID, "lee", false); err != nil {
		t.Fatal(err)
	}
	jl, err := b.login(t, ctx, "lee", "l3-expert-password").Join(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer jl.Close()
	takeControl(jl)
	lostControl(j, "lee took control of the user's computer")
	if landed(j, jl, 300, 300) {
		t.Fatal("the technician still clicked on the user's computer after the colleague took control")
	}
}

// TestKeysOnAGermanDesktop: the user's desktop has a German layout, as
// has the technician's keyboard; each key types what it says on it, the
// characters a German keyboard has where a US one has punctuation
// included, and the menu key works.
func TestKeysOnAGermanDesktop(t *testing.T) {
	display := xtest.StartXvfb(t, 1280, 720)
	cmd := exec.Command("setxkbmap", "de")
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("setxkbmap: %v: %s", err, out)
	}
	w := xtest.StartInputWitness(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _, j, _ := liveSession(t, ctx, display)
	if ok, _, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatal("take control", err)
	}
	w.Skip()
	// KeyboardEvent.code names the key by its place on a US keyboard: on a
	// German one, KeyY is the key marked Z, Minus the one marked ß.
	keys := []struct{ code, want string }{
		{"KeyY", "z"}, {"KeyZ", "y"}, {"Minus", "ß"}, {"Semicolon", "ö"}, {"Quote", "ä"},
		{"BracketLeft", "ü"}, {"Slash", "-"}, {"Backslash", "#"}, {"IntlBackslash", "<"},
	}
	for _, k := range keys {
		send(t, ctx, j, tap(k.code)...)
		w.Wait(t, `^text `+regexp.QuoteMeta(k.want)+`$`, 5*time.Second)
	}
	send(t, ctx, j, key("ShiftLeft", true))
	send(t, ctx, j, tap("Digit7")...)
	send(t, ctx, j, key("ShiftLeft", false))
	w.Wait(t, `^text /$`, 5*time.Second)
	send(t, ctx, j, tap("ContextMenu")...)
	w.Wait(t, `^key down \d+ Menu$`, 5*time.Second)
}

// TestClipboardOwnerNotAnswering: the program that holds the user's
// clipboard hangs. Fetching the clipboard says, within seconds, that it
// could not be read, and the rest keeps working: the technician's text
// still reaches the user's clipboard, and the user's next copy reaches
// the technician.
func TestClipboardOwnerNotAnswering(t *testing.T) {
	display := xtest.StartXvfb(t, 1280, 720)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _, j, host := liveSession(t, ctx, display)
	if ok, _, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatal("take control", err)
	}
	frozenClipboardOwner(t, display, "copied by a program that then froze")

	if err := j.SendControl(ctx, protocol.ControlMessage{Type: protocol.ControlClipboardRequest}); err != nil {
		t.Fatal(err)
	}
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	m, err := j.WaitControl(wait, protocol.ControlClipboard, func(m protocol.ControlMessage) bool { return m.Reason != "" })
	if err != nil {
		t.Fatalf("no answer to the fetch: %v\nhost:\n%s", err, host.stderr.String())
	}
	if m.Reason != "The remote clipboard could not be read." {
		t.Fatalf("reason = %q", m.Reason)
	}

	if err := j.SendControl(ctx, protocol.ControlMessage{Type: protocol.ControlClipboard, Text: "from the technician"}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.WaitControl(ctx, protocol.ControlClipboardSet, func(m protocol.ControlMessage) bool { return m.Reason == "" }); err != nil {
		t.Fatalf("the technician's text was not confirmed: %v", err)
	}
	if got := xclipRead(t, display); got != "from the technician" {
		t.Fatalf("user's clipboard = %q", got)
	}
	xclipWrite(t, display, "copied by the user")
	if _, err := j.WaitControl(ctx, protocol.ControlClipboard, func(m protocol.ControlMessage) bool { return m.Text == "copied by the user" }); err != nil {
		t.Fatalf("the user's copy never reached the technician: %v", err)
	}
}

// frozenClipboardOwner has a program copy text on display and then stop
// answering, as a frozen one would: reading the clipboard gets no answer
// until someone else copies.
func frozenClipboardOwner(t *testing.T, display, text string) {
	t.Helper()
	owner := exec.Command("xclip", "-i", "-selection", "clipboard", "-quiet")
	owner.Env = append(os.Environ(), "DISPLAY="+display)
	owner.Stdin = strings.NewReader(text)
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		owner.Process.Signal(syscall.SIGCONT)
		owner.Process.Kill()
		owner.Wait()
	})
	waitFor(t, 5*time.Second, func() bool { return xclipRead(t, display) == text })
	owner.Process.Signal(syscall.SIGSTOP)
}

// withColleague starts a live session on display, where the admin is
// joined as j, and has lee, a colleague, join it with perms granted.
func withColleague(t *testing.T, ctx context.Context, display string, perms ...string) (j, lee *client.Joined) {
	t.Helper()
	b, c, j, _ := liveSession(t, ctx, display)
	lee, err := colleague(t, ctx, b, c, j.ID).Join(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lee.Close() })
	if _, err := lee.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, perms...) }); err != nil {
		t.Fatal(err)
	}
	return j, lee
}

// TestClipboardAnswerOnlyToSender: two technicians may use the clipboard;
// when one sends text to the user's clipboard, only they are told it was
// set: their colleague, who sent nothing, is not.
func TestClipboardAnswerOnlyToSender(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	j, lee := withColleague(t, ctx, display, protocol.PermControl, protocol.PermClipboard)
	if err := lee.SendControl(ctx, protocol.ControlMessage{Type: protocol.ControlClipboardRequest}); err != nil {
		t.Fatal(err)
	}
	if _, err := lee.WaitControl(ctx, protocol.ControlClipboard, func(protocol.ControlMessage) bool { return true }); err != nil {
		t.Fatalf("the colleague cannot use the clipboard: %v", err)
	}

	if ok, _, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatal("take control", err)
	}
	if err := j.SendControl(ctx, protocol.ControlMessage{Type: protocol.ControlClipboard, Text: "from the admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.WaitControl(ctx, protocol.ControlClipboardSet, func(m protocol.ControlMessage) bool { return m.Reason == "" }); err != nil {
		t.Fatalf("the sender was not told the text was set: %v", err)
	}
	if got := xclipRead(t, display); got != "from the admin" {
		t.Fatalf("user's clipboard = %q", got)
	}
	time.Sleep(time.Second)
	if m, ok := lee.LastControl(protocol.ControlClipboardSet); ok {
		t.Fatalf("the colleague, who sent nothing, was told %+v", m)
	}
}

// TestClipboardFetchOnlyToAsker: two technicians may use the clipboard;
// when one fetches the user's clipboard, only they get what it holds, or
// why it could not be read: their colleague, who asked for nothing, sees
// nothing appear. What the user copies still reaches both.
func TestClipboardFetchOnlyToAsker(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	j, lee := withColleague(t, ctx, display, protocol.PermClipboard)
	// The admin puts text on the user's clipboard: neither technician is
	// sent it back as a copy by the user.
	if ok, _, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatal("take control", err)
	}
	if err := j.SendControl(ctx, protocol.ControlMessage{Type: protocol.ControlClipboard, Text: "from the admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.WaitControl(ctx, protocol.ControlClipboardSet, func(m protocol.ControlMessage) bool { return m.Reason == "" }); err != nil {
		t.Fatalf("the admin's text was not set: %v", err)
	}
	fetch := func(answered func(protocol.ControlMessage) bool) {
		t.Helper()
		if err := lee.SendControl(ctx, protocol.ControlMessage{Type: protocol.ControlClipboardRequest}); err != nil {
			t.Fatal(err)
		}
		if m, err := lee.WaitControl(ctx, protocol.ControlClipboard, answered); err != nil {
			t.Fatalf("the colleague's fetch was not answered: %v (last: %+v)", err, m)
		}
	}

	fetch(func(m protocol.ControlMessage) bool { return m.Text == "from the admin" })
	time.Sleep(time.Second)
	if m, ok := j.LastControl(protocol.ControlClipboard); ok {
		t.Fatalf("the admin, who fetched nothing, was sent %+v", m)
	}

	// A program holds the clipboard and hangs: the fetch fails, and only
	// the colleague who fetched is told so.
	frozenClipboardOwner(t, display, "held by a program that froze")
	fetch(func(m protocol.ControlMessage) bool { return m.Reason == "The remote clipboard could not be read." })
	time.Sleep(time.Second)
	if m, ok := j.LastControl(protocol.ControlClipboard); ok && m.Reason != "" {
		t.Fatalf("the admin, who fetched nothing, was told %q", m.Reason)
	}

	xclipWrite(t, display, "copied by the user")
	for who, v := range map[string]*client.Joined{"admin": j, "colleague": lee} {
		if _, err := v.WaitControl(ctx, protocol.ControlClipboard, func(m protocol.ControlMessage) bool { return m.Text == "copied by the user" }); err != nil {
			t.Fatalf("the user's copy did not reach the %s: %v", who, err)
		}
	}
}

// TestDisplayPluggedIn: the user connects a second monitor during the
// session; the technician is offered it within seconds, and can show it.
func TestDisplayPluggedIn(t *testing.T) {
	display := xtest.StartXvfb(t, 2560, 1080)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _, j, _ := liveSession(t, ctx, display)
	if _, err := j.WaitControl(ctx, protocol.ControlDisplays, func(m protocol.ControlMessage) bool { return len(m.Displays) == 1 }); err != nil {
		t.Fatal(err)
	}
	mons := xtest.SplitMonitors(t, display)
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	m, err := j.WaitControl(wait, protocol.ControlDisplays, func(m protocol.ControlMessage) bool { return len(m.Displays) == 2 })
	if err != nil {
		t.Fatalf("the second monitor was never offered: %v", err)
	}
	if d := m.Displays[1]; d.X != mons[1].X || d.Width != mons[1].Width {
		t.Fatalf("displays = %+v, monitors %+v", m.Displays, mons)
	}
	if ok, _, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatal("take control", err)
	}
	if err := j.SendControl(ctx, protocol.ControlMessage{Type: protocol.ControlDisplaySelect, Index: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool {
		img, err := j.Screenshot(ctx)
		return err == nil && img.Bounds().Dx() == mons[1].Width
	})
}
