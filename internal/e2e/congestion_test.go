package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// link is a shaped network path to the broker: the far end (the user's
// computer or the technician's) runs in a network namespace of its own,
// joined to the broker's by a veth pair, and one end's sending is shaped
// with a token bucket: the far end's for the user's upload, the broker's
// for the technician's download.
type link struct {
	ns              string // the far end's namespace
	dev             string // the shaped device
	inNS            bool   // whether dev is the far end's
	brokerIP, farIP string
}

// newLink makes the namespace and the pair, shaping the far end's sending
// when upload is set and the broker's otherwise; it needs root and iproute2.
func newLink(t *testing.T, upload bool) *link {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("shaping a network link needs root (network namespaces and tc)")
	}
	id := strconv.Itoa(os.Getpid() % 100000)
	far, near := "tcc"+id+"f", "tcc"+id+"b"
	l := &link{ns: "tether-cc" + id, dev: near, brokerIP: "10.231.0.1", farIP: "10.231.0.2"}
	if upload {
		l.dev, l.inNS = far, true
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	removeStaleLinks()
	// A container may not allow namespaces, or its kernel lack the token
	// bucket: the test cannot run there.
	if out, err := exec.Command("ip", "netns", "add", l.ns).CombinedOutput(); err != nil {
		t.Skipf("this machine cannot make a network namespace: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.ns).Run() })
	run("link", "add", near, "type", "veth", "peer", "name", far, "netns", l.ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", near).Run() })
	run("addr", "add", l.brokerIP+"/30", "dev", near)
	run("link", "set", near, "up")
	run("-n", l.ns, "addr", "add", l.farIP+"/30", "dev", far)
	run("-n", l.ns, "link", "set", far, "up")
	run("-n", l.ns, "link", "set", "lo", "up")
	if err := l.tbf(1_000_000_000); err != nil {
		t.Skipf("this kernel cannot shape a link: %v", err)
	}
	return l
}

// removeStaleLinks deletes the namespaces of test processes that are gone.
// A run stopped before its cleanup (Ctrl+C) leaves its namespace, and with
// it the pair, whose near end still holds the broker's address: the next
// run's broker would find that address twice and fail to listen.
func removeStaleLinks() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, " ")
		id, ok := strings.CutPrefix(name, "tether-cc")
		if !ok {
			continue
		}
		if _, err := os.Stat("/proc/" + id); errors.Is(err, fs.ErrNotExist) {
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

// command runs name in the far end's namespace.
func (l *link) command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.ns, name}, args...)...)
}

// onShapedSide runs name where the shaped device is.
func (l *link) onShapedSide(name string, args ...string) ([]byte, error) {
	if l.inNS {
		return l.command(name, args...).CombinedOutput()
	}
	return exec.Command(name, args...).CombinedOutput()
}

// tc runs tc where the shaped device is.
func (l *link) tc(args ...string) ([]byte, error) { return l.onShapedSide("tc", args...) }

// shape limits the shaped side's sending to bps bits/s.
func (l *link) shape(t *testing.T, bps int) {
	t.Helper()
	if err := l.tbf(bps); err != nil {
		t.Fatal(err)
	}
}

// tbf sets a token bucket of bps bits/s with a queue of at most 100 ms, as
// a home router's would be.
func (l *link) tbf(bps int) error {
	burst := max(bps/8/50, 16<<10) // 20 ms of data, at least a few packets
	out, err := l.tc("qdisc", "replace", "dev", l.dev, "root",
		"tbf", "rate", strconv.Itoa(bps)+"bit", "burst", strconv.Itoa(burst), "latency", "100ms")
	if err != nil {
		return fmt.Errorf("tc tbf: %v\n%s", err, out)
	}
	return nil
}

// lose drops share (0..1) of the UDP packets the shaped side sends, at
// random, as a poor Wi-Fi link does.
func (l *link) lose(t *testing.T, share float64) {
	t.Helper()
	nft := func(args ...string) error {
		if out, err := l.onShapedSide("nft", args...); err != nil {
			return fmt.Errorf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	table := "tether_loss_" + l.dev
	// A kernel without nf_tables cannot drop packets this way.
	if err := nft("add", "table", "inet", table); err != nil {
		t.Skipf("this machine cannot filter packets: %v", err)
	}
	if !l.inNS { // the far end's namespace takes its tables with it
		t.Cleanup(func() { exec.Command("nft", "delete", "table", "inet", table).Run() })
	}
	for _, args := range [][]string{
		{"add", "chain", "inet", table, "out", "{ type filter hook output priority 0; }"},
		{"add", "rule", "inet", table, "out", "oifname", l.dev, "meta", "l4proto", "udp",
			"numgen", "random", "mod", "1000", "<", strconv.Itoa(int(share * 1000)), "drop"},
	} {
		if err := nft(args...); err != nil {
			t.Fatal(err)
		}
	}
}

var tbfStats = regexp.MustCompile(`Sent (\d+) bytes (\d+) pkt \(dropped (\d+),`)

// counters reads what the shaped side sent and dropped so far.
func (l *link) counters(t *testing.T) (bytes, packets, dropped int64) {
	t.Helper()
	out, err := l.tc("-s", "qdisc", "show", "dev", l.dev)
	if err != nil {
		t.Fatalf("tc: %v\n%s", err, out)
	}
	m := tbfStats.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no counters in tc's output:\n%s", out)
	}
	n := func(b []byte) int64 { v, _ := strconv.ParseInt(string(b), 10, 64); return v }
	return n(m[1]), n(m[2]), n(m[3])
}

// traffic is what crossed the shaped side of a link, and the frames that
// reached the technician, over a period.
type traffic struct {
	kbps, fps     float64
	sent, dropped int64 // packets
}

// lost is the share of the packets that the link dropped.
func (tr traffic) lost() float64 {
	return float64(tr.dropped) / float64(max(1, tr.sent+tr.dropped))
}

func (tr traffic) String() string {
	return fmt.Sprintf("%.0f kbit/s, %.1f frames/s, %d packets of which %d dropped", tr.kbps, tr.fps, tr.sent, tr.dropped)
}

// frameCount is how many frames a technician has received, and when.
type frameCount func() (uint64, time.Time)

// measure reads what crossed the shaped side of l and what frames the
// technician received over d.
func (l *link) measure(t *testing.T, frames frameCount, d time.Duration) traffic {
	t.Helper()
	start := time.Now()
	b0, p0, d0 := l.counters(t)
	f0, t0 := frames()
	time.Sleep(d)
	b1, p1, d1 := l.counters(t)
	f1, t1 := frames()
	secs := time.Since(start).Seconds()
	return traffic{kbps: float64(b1-b0) * 8 / 1000 / secs, fps: float64(f1-f0) / t1.Sub(t0).Seconds(), sent: p1 - p0, dropped: d1 - d0}
}

// scrolling is a 1280x720 display with a log scrolling all over it, a few
// lines at a time, until paused.
type scrolling struct {
	display string
	paused  string // the scrolling stops while this file exists
}

func scrollingScreen(t *testing.T) scrolling {
	t.Helper()
	s := scrolling{display: xtest.StartXvfb(t, 1280, 720), paused: filepath.Join(t.TempDir(), "paused")}
	scroll := exec.Command("xterm", "-geometry", "100x30+0+0", "-e", "sh", "-c",
		`while :; do [ -e "$0" ] || od -An -tx1 -w60 -N240 /dev/urandom; sleep 0.03; done`, s.paused)
	scroll.Env = append(os.Environ(), "DISPLAY="+s.display)
	if err := scroll.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { scroll.Process.Kill(); scroll.Wait() })
	return s
}

func (s scrolling) pause(t *testing.T, paused bool) {
	t.Helper()
	var err error
	if paused {
		err = os.WriteFile(s.paused, nil, 0o600)
	} else {
		err = os.Remove(s.paused)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// lag pauses the screen and returns how long the technician still
// received frames after that: how far behind the picture was.
func (s scrolling) lag(t *testing.T, frames frameCount) time.Duration {
	t.Helper()
	s.pause(t, true)
	defer s.pause(t, false)
	paused := time.Now()
	last, _ := frames()
	lastAt := paused
	for time.Since(lastAt) < 6*time.Second && time.Since(paused) < 20*time.Second {
		time.Sleep(200 * time.Millisecond)
		if n, at := frames(); n != last {
			last, lastAt = n, at
		}
	}
	return lastAt.Sub(paused)
}

// narrowLink measures the video of screen on l while the link is wide,
// then narrow, then wide again, and checks that the video fits the narrow
// link (the link's queue drops almost nothing), keeps moving and keeps up
// (the frames stop soon after the screen does), keeps the resolution
// (screenshot is taken on the narrow link), gives up frame rate and takes
// the room back once the link is wide again.
func narrowLink(t *testing.T, l *link, screen scrolling, frames frameCount, screenshot func() image.Image) {
	t.Helper()
	time.Sleep(3 * time.Second)
	free := l.measure(t, frames, 5*time.Second)
	t.Logf("wide link: %v", free)
	const narrow = 500_000
	if free.kbps < 2*narrow/1000 {
		t.Fatalf("the scrolling screen sends only %.0f kbit/s on a wide link: too little to test a %d kbit/s one", free.kbps, narrow/1000)
	}

	l.shape(t, narrow)
	time.Sleep(10 * time.Second) // congestion control finds the width
	slow := l.measure(t, frames, 10*time.Second)
	t.Logf("%d kbit/s link: %v", narrow/1000, slow)
	// A frame of this screen at the coarsest quantizer is 45-50 KB, so
	// 1.0-1.5 frames/s at the 400-500 kbit/s congestion control settles
	// on; a frozen picture (a frame held back behind a lost one, a pacer
	// that never pays off) makes far fewer.
	if slow.fps < 0.5 {
		t.Errorf("%.1f frames/s on the narrow link: the picture froze", slow.fps)
	}
	if slow.fps > 0.8*free.fps {
		t.Errorf("%.1f frames/s on the narrow link against %.1f on the wide one: the frame rate did not give way", slow.fps, free.fps)
	}
	if loss := slow.lost(); loss > 0.03 {
		t.Errorf("the link dropped %.1f %% of the packets: more is sent than fits", 100*loss)
	}
	if got := screenshot().Bounds().Size(); got.X != 1280 || got.Y != 720 {
		t.Errorf("the picture on the narrow link is %dx%d, not 1280x720", got.X, got.Y)
	}
	lag := screen.lag(t, frames)
	t.Logf("frames kept coming for %v after the screen stopped", lag.Round(100*time.Millisecond))
	if lag > 10*time.Second {
		t.Errorf("frames kept coming for %v after the screen stopped: the picture on the narrow link lags that far behind", lag.Round(100*time.Millisecond))
	}

	l.shape(t, 1_000_000_000)
	deadline := time.Now().Add(30 * time.Second)
	for {
		again := l.measure(t, frames, 3*time.Second)
		if again.kbps > 2*slow.kbps {
			t.Logf("wide again: %v", again)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the link is wide again, but after 30 s the video still sends %v", again)
		}
	}
}

// shapedSession starts a scrolling screen, a broker reached over l, and a
// host sharing the screen (behind l when l shapes the user's upload) with
// a technician watching from this process.
func shapedSession(t *testing.T, ctx context.Context, l *link) (scrolling, *broker, *client.Joined) {
	t.Helper()
	screen := scrollingScreen(t)
	b := startBrokerWith(t, func(c *server.Config) {
		c.Addr, c.PublicAddr = l.brokerIP+":0", l.brokerIP
	})
	_, j, _ := joinLive(t, ctx, b, func(code string) *hostProc {
		cmd := exec.Command(xtest.Build(t, "./host"), "-broker", b.URL(), "-ca", b.CAFile(), code)
		if l.inNS {
			cmd = l.command(cmd.Path, cmd.Args[1:]...)
		}
		return startHostProc(t, cmd.Path, screen.display, true, nil, cmd.Args[1:]...)
	})
	return screen, b, j
}

// screenshots returns a function that takes a screenshot as j sees it.
func screenshots(t *testing.T, ctx context.Context, j *client.Joined) func() image.Image {
	return func() image.Image {
		t.Helper()
		img, err := j.Screenshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
}

// TestCongestion: when the user's upload is narrower than the video, the
// host sends less, not more than fits, keeps the resolution and gives up
// frame rate; once the link is wide again the video takes the room back.
func TestCongestion(t *testing.T) {
	l := newLink(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	screen, _, j := shapedSession(t, ctx, l)
	narrowLink(t, l, screen, func() (uint64, time.Time) { return j.Frames(), time.Now() }, screenshots(t, ctx, j))
}

var framesLine = regexp.MustCompile(`frames received: (\d+)`)

// watchFrom starts the viewer command in l's namespace watching session
// id (it prints the frames received so far every two seconds) and returns
// its frame count, once it joined, and a function that stops it.
func watchFrom(t *testing.T, ctx context.Context, l *link, b *broker, id string) (frameCount, func()) {
	t.Helper()
	v := b.viewer(t, "join", "-session", id)
	cmd := l.command(v.Path, v.Args[1:]...)
	cmd.Env = v.Env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { cmd.Process.Kill(); cmd.Wait() }) }
	t.Cleanup(stop)
	var (
		mu     sync.Mutex
		count  uint64
		at     time.Time
		joined = make(chan struct{})
	)
	go func() {
		lines := bufio.NewScanner(out)
		for lines.Scan() {
			if m := framesLine.FindStringSubmatch(lines.Text()); m != nil {
				n, _ := strconv.ParseUint(m[1], 10, 64)
				mu.Lock()
				if at.IsZero() {
					close(joined)
				}
				count, at = n, time.Now()
				mu.Unlock()
			}
		}
	}()
	select {
	case <-joined:
	case <-ctx.Done():
		t.Fatalf("the viewer never joined:\n%s", stderr.String())
	}
	return func() (uint64, time.Time) {
		mu.Lock()
		defer mu.Unlock()
		return count, at
	}, stop
}

// TestCongestionTechnician: when a technician's download is narrower than
// the video, the broker sends that technician no more than fits and has
// the host send no more than that, keeping the resolution and giving up
// frame rate as on a narrow upload; a second technician on a wide link
// sees the same picture (the video is relayed as it is). A technician who
// joins on a narrow link is soon sent no more than fits.
func TestCongestionTechnician(t *testing.T) {
	l := newLink(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	screen, b, wide := shapedSession(t, ctx, l)

	frames, leave := watchFrom(t, ctx, l, b, wide.ID)
	narrowLink(t, l, screen, frames, screenshots(t, ctx, wide))

	// A technician who joins on the narrow link loses packets at first
	// (its estimate starts at what the host sends); 10 s later the broker
	// sends it no more than fits, and the frames that lost nothing come
	// through whatever was lost before them.
	leave()
	l.shape(t, 500_000)
	frames, _ = watchFrom(t, ctx, l, b, wide.ID)
	time.Sleep(10 * time.Second)
	joined := l.measure(t, frames, 10*time.Second)
	t.Logf("joined on the narrow link: %v", joined)
	if loss := joined.lost(); loss > 0.03 {
		t.Errorf("10 s after joining, the narrow link dropped %.1f %% of the packets: more is sent than fits", 100*loss)
	}
	if joined.fps < 0.5 {
		t.Errorf("10 s after joining on the narrow link, %.1f frames/s: the picture froze", joined.fps)
	}
}

// TestLossyUpload: when the user's upload loses packets at random, the
// lost ones are resent and the video goes on as before: the recording
// waits for a resent packet instead of asking the host for a keyframe,
// so keyframes come only as often as its segments need them.
func TestLossyUpload(t *testing.T) {
	l := newLink(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, _, j := shapedSession(t, ctx, l)
	time.Sleep(3 * time.Second)
	const d = 10 * time.Second
	f0 := j.Frames()
	time.Sleep(d)
	clean := float64(j.Frames()-f0) / d.Seconds()

	l.lose(t, 0.02)
	f0, k0 := j.Frames(), j.Keyframes()
	time.Sleep(2 * d)
	lossy, keys := float64(j.Frames()-f0)/(2*d).Seconds(), j.Keyframes()-k0
	t.Logf("%.1f frames/s on a clean link; with 2 %% of the upload lost, %.1f frames/s and %d keyframes in %v", clean, lossy, keys, 2*d)
	// A recording segment starts with a keyframe every 4 s (5 in 20 s),
	// and a packet whose resends are lost too costs one (4 to 9 in all
	// here, more at a higher frame rate); asking for one at each loss made
	// 30, and halved the frame rate.
	if keys > 15 {
		t.Errorf("%d keyframes in %v with 2 %% of the upload lost: lost packets cost keyframes instead of being resent", keys, 2*d)
	}
	if lossy < 0.6*clean {
		t.Errorf("%.1f frames/s with 2 %% of the upload lost against %.1f without: the losses cost more than the packets", lossy, clean)
	}
}
