package xtest

import (
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xinerama"
	"github.com/jezek/xgb/xproto"
)

func TestMain(m *testing.M) {
	// xgb logs a line per connection when ~/.Xauthority is missing, which
	// is always the case against Xvfb without -auth.
	xgb.Logger = log.New(io.Discard, "", 0)
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

func xdotool(t *testing.T, display string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("xdotool"); err != nil {
		t.Fatal("xdotool is not installed (Debian package xdotool): run `make test`, which installs it")
	}
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xdotool %v: %v\n%s", args, err, out)
	}
}

func connect(t *testing.T, display string) (*xgb.Conn, *xproto.ScreenInfo) {
	t.Helper()
	conn, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatalf("connect to %s: %v", display, err)
	}
	t.Cleanup(conn.Close)
	return conn, xproto.Setup(conn).DefaultScreen(conn)
}

// colourAt reads one pixel of the screen as R, G, B.
func colourAt(t *testing.T, conn *xgb.Conn, root xproto.Window, x, y int) [3]uint8 {
	t.Helper()
	img, err := xproto.GetImage(conn, xproto.ImageFormatZPixmap, xproto.Drawable(root), int16(x), int16(y), 1, 1, ^uint32(0)).Reply()
	if err != nil || len(img.Data) < 3 {
		t.Fatalf("read pixel %d,%d: %v (%d bytes)", x, y, err, len(img.Data))
	}
	return [3]uint8{img.Data[2], img.Data[1], img.Data[0]} // 24-bit TrueColor: B, G, R, pad
}

func TestInputWitness(t *testing.T) {
	display := StartXvfb(t, 1280, 720)
	logPath := filepath.Join(t.TempDir(), "events.log")
	w := StartInputWitness(t, display, "-log", logPath)
	conn, screen := connect(t, display)
	const timeout = 5 * time.Second

	t.Run("click toggles colour", func(t *testing.T) {
		if got := colourAt(t, conn, screen.Root, 100, 100); got != WitnessStart {
			t.Fatalf("colour before any click %v, want %v", got, WitnessStart)
		}
		xdotool(t, display, "mousemove", "640", "360", "click", "1")
		w.Wait(t, "^motion 640 360$", timeout)
		w.Wait(t, "^button 1 down 640 360$", timeout)
		w.Wait(t, "^colour #ffffff$", timeout)
		w.Wait(t, "^button 1 up 640 360$", timeout)
		// "colour" is printed once the repaint reached the server.
		if got := colourAt(t, conn, screen.Root, 100, 100); got != WitnessToggled {
			t.Errorf("colour after one click %v, want %v", got, WitnessToggled)
		}
		xdotool(t, display, "mousemove", "10", "20", "click", "3")
		w.Wait(t, "^button 3 down 10 20$", timeout)
		w.Wait(t, "^colour #000000$", timeout)
		w.Wait(t, "^button 3 up 10 20$", timeout)
		if got := colourAt(t, conn, screen.Root, 1000, 600); got != WitnessStart {
			t.Errorf("colour after two clicks %v, want %v", got, WitnessStart)
		}
	})

	t.Run("wheel", func(t *testing.T) {
		xdotool(t, display, "click", "4", "click", "5")
		w.Wait(t, "^wheel up$", timeout)
		w.Wait(t, "^wheel down$", timeout)
		// A wheel step is no click.
		if got := colourAt(t, conn, screen.Root, 100, 100); got != WitnessStart {
			t.Errorf("colour after wheel steps %v, want %v", got, WitnessStart)
		}
	})

	t.Run("type text", func(t *testing.T) {
		before := len(w.Lines())
		xdotool(t, display, "type", "--delay", "10", "Hello, World!")
		w.Wait(t, `^key down \d+ Shift_L$`, timeout)
		w.Wait(t, `^key down \d+ h$`, timeout)
		w.Wait(t, "^text H$", timeout)
		w.Wait(t, "^text !$", timeout)
		var text strings.Builder
		for _, l := range w.Lines()[before:] {
			if c, ok := strings.CutPrefix(l, "text "); ok {
				text.WriteString(c)
			}
		}
		if text.String() != "Hello, World!" {
			t.Errorf("witness got text %q, want %q", text.String(), "Hello, World!")
		}
	})

	t.Run("named keys", func(t *testing.T) {
		keys := []string{"Return", "BackSpace", "Tab", "Escape", "F1", "F12", "Left", "Up", "Right", "Down",
			"Delete", "Home", "End", "Prior", "Next", "space", "Control_R", "Alt_L", "Super_L", "Shift_R"}
		xdotool(t, display, append([]string{"key"}, keys...)...)
		for _, k := range keys {
			w.Wait(t, `^key down \d+ `+k+`$`, timeout)
			w.Wait(t, `^key up \d+ `+k+`$`, timeout)
		}
		before := len(w.Lines())
		xdotool(t, display, "key", "ctrl+a", "shift+2")
		w.Wait(t, `^key down \d+ Control_L$`, timeout)
		w.Wait(t, `^key down 38 a$`, timeout)
		w.Wait(t, `^text @$`, timeout)
		w.Wait(t, `^key up \d+ Shift_L$`, timeout)
		for _, l := range w.Lines()[before:] {
			if l == "text a" {
				t.Errorf("ctrl+a printed %q: a shortcut is no text", l)
			}
		}
	})

	t.Run("nothing unprompted", func(t *testing.T) {
		// The witness prints only what it got.
		w.Skip()
		if l, err := w.wait("^(button|key|wheel|text)", 300*time.Millisecond); err == nil {
			t.Errorf("witness printed %q with no input injected", l)
		}
	})

	t.Run("log file", func(t *testing.T) {
		data, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		want := append([]string{"ready"}, w.Lines()...)
		if !slices.Equal(got, want) {
			t.Errorf("log file holds %d lines, stdout %d:\nlog: %q\nstdout: %q", len(got), len(want), got, want)
		}
	})
}

func TestWitnessWaitOrder(t *testing.T) {
	w := &Witness{changed: make(chan struct{})}
	go w.read(strings.NewReader("ready\na 1\nb 2\na 3\n"))
	for _, want := range []string{"ready", "a 1", "a 3"} {
		if got, err := w.wait("^"+regexp.QuoteMeta(want[:1]), time.Second); err != nil || got != want {
			t.Fatalf("wait: %q, %v; want %q", got, err, want)
		}
	}
	// b 2 came before a 3: it is behind the cursor now.
	if got, err := w.wait("^b", 100*time.Millisecond); err == nil {
		t.Errorf("wait returned %q, which came before the previous match", got)
	}
	if got := w.Lines(); !slices.Equal(got, []string{"a 1", "b 2", "a 3"}) {
		t.Errorf("Lines() = %q", got)
	}
}

func TestSplitMonitors(t *testing.T) {
	display := StartXvfb(t, 2560, 1080)
	ms := SplitMonitors(t, display)
	want := []Monitor{{"L", 0, 0, 1280, 1080}, {"R", 1280, 0, 1280, 1080}}
	if !slices.Equal(ms, want) {
		t.Errorf("SplitMonitors returned %+v, want %+v", ms, want)
	}
	// Xinerama is what kbinani/screenshot and most programs read.
	conn, _ := connect(t, display)
	if err := xinerama.Init(conn); err != nil {
		t.Fatalf("Xinerama: %v", err)
	}
	reply, err := xinerama.QueryScreens(conn).Reply()
	if err != nil {
		t.Fatalf("Xinerama screens: %v", err)
	}
	var heads []Monitor
	for i, s := range reply.ScreenInfo {
		heads = append(heads, Monitor{want[min(i, 1)].Name, int(s.XOrg), int(s.YOrg), int(s.Width), int(s.Height)})
	}
	if !slices.Equal(heads, want) {
		t.Errorf("Xinerama reports %+v, want %+v", heads, want)
	}
}

func TestXvfbServerStop(t *testing.T) {
	s := StartXvfbServer(t, 320, 240, "-extension", "MIT-SHM")
	conn, _ := connect(t, s.Display)
	if reply, err := xproto.QueryExtension(conn, 7, "MIT-SHM").Reply(); err != nil || reply.Present {
		t.Errorf("MIT-SHM present=%v (%v) on a server started without it", reply != nil && reply.Present, err)
	}
	s.Stop()
	if c, err := xgb.NewConnDisplay(s.Display); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", s.Display)
	}
	s.Stop() // a second Stop, and Cleanup's, do nothing
}
