package e2e

import (
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	home := t.TempDir()
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(viewer, append([]string{"-broker", b.URL(), "-ca", b.CAFile()}, args...)...)
		// The saved login token goes under this test's own config dir.
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "TETHER_API_KEY=")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	if out, err := run("admin\nwrong-password\n", "login"); err == nil || !strings.Contains(out, "Wrong username or password") {
		t.Fatalf("login with a wrong password: %v\n%s", err, out)
	}
	if out, err := run("", "create"); err == nil || !strings.Contains(out, "Log in") {
		t.Fatalf("create before login: %v\n%s", err, out)
	}
	if out, err := run(b.admin.User+"\n"+b.admin.Password+"\n", "login"); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	out, err := run("", "create", "-ticket", "INC-77")
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

	if out, err := run("", "end", "-session", id); err != nil {
		t.Fatalf("end: %v\n%s", err, out)
	}
	if code := host.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("host exit code %d", code)
	}
}
