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

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
)

// TestConsentDialog: started without a terminal, as from a desktop
// launcher, the host asks in a dialog (zenity). The user ticks view only
// and allows it; later takes it back from the sharing window.
func TestConsentDialog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	display := xtest.StartXvfb(t, 1024, 768)
	b := startBroker(t)
	c := b.client(t)
	sess, err := c.CreateSession(ctx, "INC-DIALOG", protocol.PermView, protocol.PermControl)
	if err != nil {
		t.Fatal(err)
	}
	host := exec.Command(xtest.Build(t, "./host"), "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	host.Env = append(os.Environ(), "DISPLAY="+display)
	var out syncBuffer
	host.Stdout, host.Stderr = &out, &out // no terminal: standard input is /dev/null
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		host.Process.Kill()
		host.Wait()
	})

	xdo := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "xdotool", args...)
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("xdotool %v: %v\nhost:\n%s", args, err, out.String())
		}
		return strings.TrimSpace(string(got))
	}
	// window waits for the dialog titled title and returns its id and size.
	window := func(title string) (id string, w, h int) {
		t.Helper()
		id = strings.Fields(xdo("search", "--sync", "--onlyvisible", "--name", title))[0]
		for _, line := range strings.Split(xdo("getwindowgeometry", "--shell", id), "\n") {
			k, v, _ := strings.Cut(line, "=")
			n, _ := strconv.Atoi(v)
			switch k {
			case "WIDTH":
				w = n
			case "HEIGHT":
				h = n
			}
		}
		return id, w, h
	}
	click := func(id string, x, y int) {
		t.Helper()
		xdo("mousemove", "--window", id, strconv.Itoa(x), strconv.Itoa(y), "click", "1")
		time.Sleep(200 * time.Millisecond)
	}

	visible := func(title string) bool {
		cmd := exec.CommandContext(ctx, "xdotool", "search", "--onlyvisible", "--name", title)
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		return cmd.Run() == nil
	}
	const question, sharing = "Tether: remote support request", "Tether: sharing this computer"

	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// The question, alone on the screen (nothing is shared yet, so there
	// is no sharing window to cover it): a checklist under two lines of
	// text, nothing ticked, Allow at the bottom right.
	ask, w, h := window(question)
	time.Sleep(500 * time.Millisecond) // drawn
	if visible(sharing) {
		t.Fatal("a sharing window is up before anything is shared")
	}
	click(ask, 40, 89)     // the first row's box: view
	click(ask, w-51, h-25) // Allow
	answered, cancelAnswer := context.WithTimeout(ctx, 20*time.Second)
	defer cancelAnswer()
	p, err := j.WaitPermissions(answered, func(p protocol.Permissions) bool { return !p.Pending && p.Message != "" })
	if err != nil {
		t.Fatalf("no answer from the dialog (did the clicks miss its box and button?): %v\nhost:\n%s", err, out.String())
	}
	if !slices.Equal(p.Granted, []string{protocol.PermView}) {
		t.Fatalf("granted %v, want view alone\nhost:\n%s", p.Granted, out.String())
	}
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatalf("screenshot after the grant: %v", err)
	}

	// Now the sharing window: pause, take back view, end; the user takes
	// view back, and with nothing shared the window goes.
	share, w, h := window(sharing)
	time.Sleep(500 * time.Millisecond)
	click(share, 25, 47+23*1) // revoke view
	click(share, w-86, h-25)  // Do it
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return !slices.Contains(p.Granted, protocol.PermView) }); err != nil {
		t.Fatalf("view not revoked: %v\nhost:\n%s", err, out.String())
	}
	time.Sleep(time.Second)
	if visible(sharing) {
		t.Error("the sharing window stays up with nothing shared")
	}
	if !strings.Contains(out.String(), `"front end"="dialog (zenity)"`) || !strings.Contains(out.String(), "revoked view") {
		t.Errorf("the host's own account:\n%s", out.String())
	}
}
