package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/xtest"
)

// link is the user's network: the host runs in a network namespace of
// its own, joined to the broker's by a veth pair whose outgoing side (the
// user's upload) is shaped with a token bucket.
type link struct {
	ns, dev          string // the namespace and the host's end of the pair
	brokerIP, hostIP string
}

// newLink makes the namespace and the pair; it needs root and iproute2.
func newLink(t *testing.T) *link {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("shaping a network link needs root (network namespaces and tc)")
	}
	id := strconv.Itoa(os.Getpid() % 100000)
	l := &link{ns: "tether-cc" + id, dev: "tcc" + id + "h", brokerIP: "10.231.0.1", hostIP: "10.231.0.2"}
	peer := "tcc" + id + "b"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// A container may not allow namespaces, or its kernel lack the token
	// bucket: the test cannot run there.
	if out, err := exec.Command("ip", "netns", "add", l.ns).CombinedOutput(); err != nil {
		t.Skipf("this machine cannot make a network namespace: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.ns).Run() })
	run("link", "add", peer, "type", "veth", "peer", "name", l.dev, "netns", l.ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", peer).Run() })
	run("addr", "add", l.brokerIP+"/30", "dev", peer)
	run("link", "set", peer, "up")
	run("-n", l.ns, "addr", "add", l.hostIP+"/30", "dev", l.dev)
	run("-n", l.ns, "link", "set", l.dev, "up")
	run("-n", l.ns, "link", "set", "lo", "up")
	if err := l.tbf(1_000_000_000); err != nil {
		t.Skipf("this kernel cannot shape a link: %v", err)
	}
	return l
}

// shape limits the user's upload to bps bits/s.
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
	out, err := exec.Command("ip", "netns", "exec", l.ns, "tc", "qdisc", "replace", "dev", l.dev, "root",
		"tbf", "rate", strconv.Itoa(bps)+"bit", "burst", strconv.Itoa(burst), "latency", "100ms").CombinedOutput()
	if err != nil {
		return fmt.Errorf("tc tbf: %v\n%s", err, out)
	}
	return nil
}

var tbfStats = regexp.MustCompile(`Sent (\d+) bytes (\d+) pkt \(dropped (\d+),`)

// counters reads what the user's upload sent and dropped so far.
func (l *link) counters(t *testing.T) (bytes, packets, dropped int64) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", l.ns, "tc", "-s", "qdisc", "show", "dev", l.dev).CombinedOutput()
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

// traffic is what crossed the user's upload and reached the technician
// over a period.
type traffic struct {
	kbps, fps     float64
	sent, dropped int64 // packets
}

func (tr traffic) String() string {
	return fmt.Sprintf("%.0f kbit/s, %.1f frames/s, %d packets of which %d dropped", tr.kbps, tr.fps, tr.sent, tr.dropped)
}

// TestCongestion: when the user's upload is narrower than the video, the
// host sends less, not more than fits (the link's queue drops almost
// nothing), keeps the resolution and gives up frame rate; once the link
// is wide again the video takes the room back.
func TestCongestion(t *testing.T) {
	l := newLink(t)
	display := xtest.StartXvfb(t, 1280, 720)
	// A log scrolling all over the screen, a few lines at a time.
	scroll := exec.Command("xterm", "-geometry", "100x30+0+0", "-e", "sh", "-c", "while :; do od -An -tx1 -w60 -N240 /dev/urandom; sleep 0.03; done")
	scroll.Env = append(os.Environ(), "DISPLAY="+display)
	if err := scroll.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { scroll.Process.Kill(); scroll.Wait() })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := startBrokerWith(t, func(c *server.Config) {
		c.Addr, c.PublicAddr = l.brokerIP+":0", l.brokerIP
	})
	_, j, _ := joinLive(t, ctx, b, func(code string) *hostProc {
		return startHostProc(t, "ip", display, true, nil, "netns", "exec", l.ns,
			xtest.Build(t, "./host"), "-broker", b.URL(), "-ca", b.CAFile(), code)
	})

	measure := func(d time.Duration) traffic {
		b0, p0, d0 := l.counters(t)
		f0, t0 := j.Frames(), time.Now()
		time.Sleep(d)
		b1, p1, d1 := l.counters(t)
		secs := time.Since(t0).Seconds()
		return traffic{kbps: float64(b1-b0) * 8 / 1000 / secs, fps: float64(j.Frames()-f0) / secs, sent: p1 - p0, dropped: d1 - d0}
	}

	time.Sleep(3 * time.Second)
	free := measure(5 * time.Second)
	t.Logf("wide link: %v", free)
	const narrow = 500_000
	if free.kbps < 2*narrow/1000 {
		t.Fatalf("the scrolling screen sends only %.0f kbit/s on a wide link: too little to test a %d kbit/s one", free.kbps, narrow/1000)
	}

	l.shape(t, narrow)
	time.Sleep(10 * time.Second) // congestion control finds the width
	slow := measure(10 * time.Second)
	t.Logf("%d kbit/s link: %v", narrow/1000, slow)
	if slow.fps < 1 {
		t.Errorf("%.1f frames/s on the narrow link: the picture froze", slow.fps)
	}
	if slow.fps > 0.8*free.fps {
		t.Errorf("%.1f frames/s on the narrow link against %.1f on the wide one: the frame rate did not give way", slow.fps, free.fps)
	}
	if loss := float64(slow.dropped) / float64(max(1, slow.sent+slow.dropped)); loss > 0.03 {
		t.Errorf("the link dropped %.1f %% of the packets: the host sends more than fits", 100*loss)
	}
	img, err := j.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got.X != 1280 || got.Y != 720 {
		t.Errorf("the picture on the narrow link is %dx%d, not 1280x720", got.X, got.Y)
	}

	l.shape(t, 1_000_000_000)
	deadline := time.Now().Add(30 * time.Second)
	for {
		again := measure(3 * time.Second)
		if again.kbps > 2*slow.kbps {
			t.Logf("wide again: %v", again)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the link is wide again, but after 30 s the video still sends %v", again)
		}
	}
}
