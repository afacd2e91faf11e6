package session

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/host/capture"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc/rtctest"
	"github.com/tether-support/tether/internal/xtest"
)

// TestStreamStill: on both capture paths, once the picture has settled a
// still screen sends no frames, a click that repaints a window sends
// frames at once, and the picture settles again.
func TestStreamStill(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	w := xtest.StartInputWitness(t, display)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	for _, path := range []struct {
		name string
		open func(int) (capture.Capturer, error)
	}{{capture.NameXShm, capture.Open}, {capture.NamePortable, capture.OpenPortable}} {
		t.Run(path.name, func(t *testing.T) {
			c, err := path.open(0)
			if err != nil {
				t.Fatal(err)
			}
			var paused atomic.Bool
			st := &streamer{log: log, maxFPS: 30, allow: func(string) bool { return !paused.Load() }}
			frames := runStreamer(t, st, c, nil)
			waitStill(t, frames)
			before := frames.Load()
			time.Sleep(1500 * time.Millisecond)
			if n := frames.Load() - before; n != 0 {
				t.Fatalf("%d frames during 1.5 s of a still screen", n)
			}

			// A keyframe request (a viewer joined, or lost a packet) is
			// answered at once.
			for range 3 {
				n := frames.Load()
				st.keyframe.Store(true)
				waitFrames(t, frames, n, 200*time.Millisecond)
			}
			waitStill(t, frames)

			click := func() { clickWitness(t, w) }
			before = frames.Load()
			click()
			waitFrames(t, frames, before, 500*time.Millisecond)
			waitStill(t, frames)

			// Paused while the stream waits for a change: the change is
			// not sent; going on sends the screen as it is.
			paused.Store(true)
			before = frames.Load()
			click()
			time.Sleep(time.Second)
			if n := frames.Load() - before; n != 0 {
				t.Fatalf("%d frames sent of a change made while the user paused", n)
			}
			paused.Store(false)
			waitFrames(t, frames, before, time.Second)
			waitStill(t, frames)
		})
	}
}

// TestStreamPausedWhilePaced: a change that waits its turn (the frame rate
// keeps changes apart, the bitrate pays for big frames: a second or more
// on a slow link) is not captured if the user paused meanwhile. Pausing
// is how a user hides what they open next.
func TestStreamPausedWhilePaced(t *testing.T) {
	w, c := witnessScreen(t)
	var paused atomic.Bool
	// One change a second: the second click's change waits about a second.
	st := &streamer{log: slog.New(slog.NewTextHandler(io.Discard, nil)), maxFPS: 1, allow: func(string) bool { return !paused.Load() }}
	frames := runStreamer(t, st, c, nil)
	waitStill(t, frames)

	click := func() { clickWitness(t, w) }
	before := frames.Load()
	click()
	waitFrames(t, frames, before, 500*time.Millisecond)
	click()
	paused.Store(true)
	time.Sleep(200 * time.Millisecond) // a frame on its way when the user paused
	before = frames.Load()
	time.Sleep(1500 * time.Millisecond)
	if n := frames.Load() - before; n != 0 {
		t.Fatalf("%d frames sent after the user paused, of a change that waited its turn", n)
	}
	paused.Store(false)
	waitFrames(t, frames, before, 2*time.Second)
}

// witnessScreen starts a 320x240 screen showing the input witness, and
// its capturer.
func witnessScreen(t *testing.T) (*xtest.Witness, capture.Capturer) {
	t.Helper()
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	w := xtest.StartInputWitness(t, display)
	c, err := capture.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	return w, c
}

// clickWitness clicks the middle of a 320x240 screen, where the input
// witness toggles its colour, and waits until it has. (xdotool: the
// injector's X connection outlives a test's server.)
func clickWitness(t *testing.T, w *xtest.Witness) {
	t.Helper()
	if out, err := exec.Command("xdotool", "mousemove", "160", "120", "click", "1").CombinedOutput(); err != nil {
		t.Fatalf("xdotool: %v %s", err, out)
	}
	w.Wait(t, `^colour `, 5*time.Second)
}

// runStreamer runs st on c, from a keyframe, until the test ends, and
// waits for its first frame; it returns the count of frames a peer
// received (stamps, if not nil, gets each one's arrival and RTP time).
func runStreamer(t *testing.T, st *streamer, c capture.Capturer, stamps chan<- frameStamp) *atomic.Int64 {
	t.Helper()
	st.capt = c
	st.keyframe.Store(true)
	frames := receive(t, st, stamps)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stream: %v", err)
		}
		c.Close()
	})
	waitFrames(t, frames, 0, 10*time.Second)
	return frames
}

// frameStamp is when a frame's last packet arrived, its RTP time, and
// whether it is a keyframe, with a keyframe's width.
type frameStamp struct {
	arrived time.Time
	rtp     uint32
	key     bool
	width   int
}

// TestStreamStampsFrames: each frame carries the time it was captured, so
// a recording shows a change when it happened: the frame after a still
// second is stamped a second after the one before it, not with the gap
// before that.
func TestStreamStampsFrames(t *testing.T) {
	w, c := witnessScreen(t)
	st := &streamer{log: slog.New(slog.NewTextHandler(io.Discard, nil)), maxFPS: 30, allow: func(string) bool { return true }}
	stamps := make(chan frameStamp, 1000)
	frames := runStreamer(t, st, c, stamps)
	for range 2 {
		waitStill(t, frames)
		time.Sleep(time.Second)
		clickWitness(t, w)
	}
	waitStill(t, frames)
	var prev *frameStamp
	gaps := 0
	for range len(stamps) {
		s := <-stamps
		if prev != nil {
			arrived := s.arrived.Sub(prev.arrived)
			stamped := time.Duration(s.rtp-prev.rtp) * time.Second / 90000
			if arrived > time.Second {
				gaps++
			}
			// Arrival follows capture by the time encoding and sending
			// take, alike for every frame but on a busy machine; stamped
			// with the time before, the frame after a still moment would
			// be off by more than a second.
			if d := stamped - arrived; d > 300*time.Millisecond || d < -300*time.Millisecond {
				t.Errorf("a frame %v after the one before is stamped %v after it", arrived.Round(time.Millisecond), stamped.Round(time.Millisecond))
			}
		}
		prev = &s
	}
	if gaps < 2 {
		t.Fatalf("%d frames after a still moment; the test needs 2", gaps)
	}
}

// TestStreamPeriodicKeyframe: the periodic keyframe goes with a busy
// screen's frames, never with the first change after a still moment (the
// technician's click would wait while the whole picture is sent).
func TestStreamPeriodicKeyframe(t *testing.T) {
	w, c := witnessScreen(t)
	st := &streamer{log: slog.New(slog.NewTextHandler(io.Discard, nil)), maxFPS: 30, keyEvery: time.Second, allow: func(string) bool { return true }}
	stamps := make(chan frameStamp, 1000)
	frames := runStreamer(t, st, c, stamps)
	waitStill(t, frames)
	time.Sleep(1500 * time.Millisecond) // a periodic keyframe is due
	for len(stamps) > 0 {
		<-stamps
	}
	clickWitness(t, w)
	if f := <-stamps; f.key {
		t.Error("the first change after a still moment was sent as a keyframe")
	}
	// A busy screen gets its periodic keyframe.
	keys := 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		clickWitness(t, w)
		for len(stamps) > 0 {
			if f := <-stamps; f.key {
				keys++
			}
		}
	}
	if keys == 0 {
		t.Error("no periodic keyframe in 3 s of a busy screen, with one due every second")
	}
}

// TestStreamKeyframeRefined: a keyframe asked for on a still screen (a
// viewer joined, or lost a packet) comes out coarse on a narrow link; the
// frames after it sharpen it, as after a change, instead of leaving the
// text smeared until something moves.
func TestStreamKeyframeRefined(t *testing.T) {
	display := xtest.StartXvfb(t, 1280, 720)
	t.Setenv("DISPLAY", display)
	text := exec.Command("xterm", "-geometry", "100x20+0+0", "-e", "sh", "-c", "od -An -tx1 -w32 -N500 /dev/urandom; sleep 600")
	text.Env = append(os.Environ(), "DISPLAY="+display)
	if err := text.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { text.Process.Kill(); text.Wait() })
	c, err := capture.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	st := &streamer{log: slog.New(slog.NewTextHandler(io.Discard, nil)), maxFPS: 30, allow: func(string) bool { return true }}
	st.limit.Store(minBitrate) // the narrowest viewer's link
	frames := runStreamer(t, st, c, nil)
	// The terminal draws its text, sent at the link's pace, and refined.
	for deadline := time.Now().Add(60 * time.Second); ; {
		n := frames.Load()
		time.Sleep(3 * time.Second)
		if frames.Load() == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the screen never settled")
		}
	}
	before := frames.Load()
	st.keyframe.Store(true)
	time.Sleep(4 * time.Second)
	if n := frames.Load() - before; n < 2 {
		t.Errorf("%d frame after a keyframe request on a narrow link: the coarse keyframe was not refined", n)
	}
}

// receive connects st's video track to a receiving peer and returns the
// count of frames that peer has received. Each frame's stamp goes to
// stamps, if not nil.
func receive(t *testing.T, st *streamer, stamps chan<- frameStamp) *atomic.Int64 {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me))
	peer := func() *webrtc.PeerConnection {
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return pc
	}
	sender, receiver := peer(), peer()
	var err error
	if st.track, err = newFrameTrack(); err != nil {
		t.Fatal(err)
	}
	if _, err := sender.AddTransceiverFromTrack(st.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	var frames atomic.Int64
	receiver.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		key, width := false, 0
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			// A frame's first packet says whether it is a keyframe: the
			// lowest bit of its first payload byte is 0.
			var vp8 codecs.VP8Packet
			if payload, err := vp8.Unmarshal(p.Payload); err == nil && vp8.S == 1 && vp8.PID == 0 && len(payload) > 0 {
				key = payload[0]&1 == 0
				width = 0
				if key && len(payload) >= 8 {
					width = int(payload[6]) | int(payload[7]&0x3f)<<8
				}
			}
			if p.Marker {
				frames.Add(1)
				if stamps != nil {
					stamps <- frameStamp{time.Now(), p.Timestamp, key, width}
				}
			}
		}
	})
	rtctest.Connect(t, sender, receiver)
	return &frames
}

// waitFrames waits until more than n frames have arrived.
func waitFrames(t *testing.T, frames *atomic.Int64, n int64, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); frames.Load() <= n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no frame within %v (%d so far)", timeout, frames.Load())
		}
	}
}

// waitStill waits until no frame has arrived for 500 ms: the settle
// frames after a change are done.
func waitStill(t *testing.T, frames *atomic.Int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		n := frames.Load()
		time.Sleep(500 * time.Millisecond)
		if frames.Load() == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("frames keep coming on a still screen (%d so far)", frames.Load())
		}
	}
}

// TestTarget: the video uses what congestion control estimates the link
// to the broker carries, or less when the broker says a viewer's link
// carries less, but never less than the least it is ever given.
func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		estimate int
		limit    float32 // 0: the broker said nothing
		want     int
	}{
		{0, 0, 0},
		{2_000_000, 0, 2_000_000},
		{2_000_000, 500_000, 500_000},
		{2_000_000, 1 << 30, 2_000_000},
		{0, 500_000, 500_000},
		{2_000_000, 1_000, minBitrate},
	} {
		var s streamer
		s.bitrate.Store(int64(tc.estimate))
		if tc.limit > 0 {
			s.setLimit(tc.limit)
		}
		if got := s.target(); got != tc.want {
			t.Errorf("estimate %d, broker's limit %.0f: target %d, want %d", tc.estimate, tc.limit, got, tc.want)
		}
	}
}

// TestStreamEndsWhenTheDisplayGoes: the stream stops with an error when
// the X server goes away, rather than trying again and again.
func TestStreamEndsWhenTheDisplayGoes(t *testing.T) {
	x := xtest.StartXvfbServer(t, 320, 240)
	t.Setenv("DISPLAY", x.Display)
	c, err := capture.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st := &streamer{log: slog.New(slog.NewTextHandler(io.Discard, nil)), maxFPS: 30, allow: func(string) bool { return true }}
	st.capt = c
	st.keyframe.Store(true)
	frames := receive(t, st, nil)
	done := make(chan error, 1)
	go func() { done <- st.run(context.Background()) }()
	waitFrames(t, frames, 0, 10*time.Second)
	waitStill(t, frames)
	x.Stop()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the stream ended without an error when the X server went away")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream goes on 5 s after the X server went away")
	}
}

// splitStream serves monitor index of a 1280x480 screen split in two (see
// xtest.SplitMonitors), whose counter repaints every interval, until the
// test ends: it returns the display, the streamer, the frames a peer
// received and how often the display was taken for lost.
func splitStream(t *testing.T, interval string, fps, index int) (string, *streamer, *atomic.Int64, *atomic.Int32) {
	t.Helper()
	display := xtest.StartXvfb(t, 1280, 480)
	t.Setenv("DISPLAY", display)
	xtest.SplitMonitors(t, display)
	xtest.StartPattern(t, display, "-mode", "counter", "-interval", interval)
	st := &streamer{log: slog.New(slog.NewTextHandler(io.Discard, nil)), maxFPS: fps, allow: func(string) bool { return true }}
	if _, err := st.setDisplay(index); err != nil {
		t.Fatal(err)
	}
	frames := receive(t, st, nil)
	lost := &atomic.Int32{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.serve(ctx, func() { lost.Add(1) })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		st.current().Close()
	})
	waitFrames(t, frames, 0, 10*time.Second)
	return display, st, frames, lost
}

// TestStreamSwitchesWhileChanging: the technician switches displays again
// and again while the screen changes every frame. Each switch closes the
// capturer whose shared memory the last frame is read from: the stream
// must go on, not read freed memory (the host crashed).
func TestStreamSwitchesWhileChanging(t *testing.T) {
	_, st, frames, lost := splitStream(t, "10", 60, 0)
	for i := range 150 {
		if _, err := st.setDisplay((i + 1) % 2); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(5+i%20) * time.Millisecond)
	}
	// A switch that met the capture under way may have started the stream
	// over, a second after the error (restartAfter): frames come back
	// within a few of those.
	n := frames.Load()
	waitFrames(t, frames, n+10, 15*time.Second)
	if lost.Load() != 0 {
		t.Fatal("the display was taken for lost")
	}
}

// TestDisplaySwitchSaysFromWhichFrame: the technician switches to another
// monitor while the screen changes every frame. The host's answer says
// from which RTP time the video shows it; the console goes by that to
// tell a click on the new monitor's picture from one on the picture
// before, which it cannot do by size alone. No frame of the monitor left
// may carry that time or a later one, and the new monitor's frames do
// soon.
func TestDisplaySwitchSaysFromWhichFrame(t *testing.T) {
	display := xtest.StartXvfb(t, 960, 480)
	t.Setenv("DISPLAY", display)
	// Monitors of two sizes: the width in a keyframe says whose it is.
	xtest.SetMonitors(t, display, xtest.Monitor{Name: "L", X: 0, Y: 0, Width: 640, Height: 480}, xtest.Monitor{Name: "R", X: 640, Y: 0, Width: 320, Height: 240})
	xtest.StartPattern(t, display, "-mode", "counter", "-interval", "10")
	st := &streamer{log: slog.New(slog.NewTextHandler(io.Discard, nil)), maxFPS: 60, allow: func(string) bool { return true }}
	c, err := capture.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	stamps := make(chan frameStamp, 10000)
	frames := runStreamer(t, st, c, stamps)
	waitFrames(t, frames, 10, 5*time.Second)
	if _, err := st.setDisplay(1); err != nil {
		t.Fatal(err)
	}
	msg, err := st.displays()
	if err != nil {
		t.Fatal(err)
	}
	if msg.Current != 1 || msg.ShownFrom == 0 {
		t.Fatalf("the answer to the switch says display %d from RTP time %d", msg.Current, msg.ShownFrom)
	}
	n := frames.Load()
	waitFrames(t, frames, n+10, 5*time.Second)
	after := func(ts uint32) bool { return int32(ts-msg.ShownFrom) >= 0 }
	width, newFrom := 640, uint32(0)
	for len(stamps) > 0 {
		f := <-stamps
		if f.width != 0 {
			width = f.width
		}
		switch {
		case width == 640 && after(f.rtp):
			t.Fatalf("a frame of the monitor left is stamped %d, at or after %d", f.rtp, msg.ShownFrom)
		case width == 320 && after(f.rtp) && newFrom == 0:
			newFrom = f.rtp
		}
	}
	if newFrom == 0 {
		t.Fatalf("no frame of the new monitor stamped at or after %d", msg.ShownFrom)
	}
	if d := time.Duration(newFrom-msg.ShownFrom) * time.Second / 90000; d > 200*time.Millisecond {
		t.Errorf("the new monitor's frames reach %d only %v after it, on a screen changing every 10 ms", msg.ShownFrom, d)
	}
}

// TestStreamMonitorUnplugged: the user unplugs the monitor the technician
// is shown. The stream goes on with the primary one, instead of stopping
// for the rest of the session with the last picture frozen.
func TestStreamMonitorUnplugged(t *testing.T) {
	display, st, frames, lost := splitStream(t, "30", 30, 1)

	unplug := exec.Command("xrandr", "--delmonitor", "R")
	unplug.Env = append(os.Environ(), "DISPLAY="+display)
	if out, err := unplug.CombinedOutput(); err != nil {
		t.Fatalf("xrandr: %v\n%s", err, out)
	}
	xtest.SetMode(t, display, 640, 480)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st.mu.Lock()
		shown := st.display
		st.mu.Unlock()
		if shown == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stream did not go on with the primary monitor")
		}
		time.Sleep(50 * time.Millisecond)
	}
	n := frames.Load()
	waitFrames(t, frames, n+5, 5*time.Second)
	if w, h := st.current().Size(); w != 640 || h != 480 {
		t.Errorf("shown %dx%d, want the primary monitor's 640x480", w, h)
	}
	if lost.Load() != 0 {
		t.Fatal("the display was taken for lost")
	}
}

// TestStreamFollowsRearrangedMonitor: the user drags the monitor the
// technician is shown to the other side in the display settings; the
// screen keeps its size. The stream follows it to its new place, instead
// of going on with the old rectangle, now the other monitor's picture.
func TestStreamFollowsRearrangedMonitor(t *testing.T) {
	display, st, _, _ := splitStream(t, "30", 30, 1)
	for _, name := range []string{"R", "L"} {
		del := exec.Command("xrandr", "--delmonitor", name)
		del.Env = append(os.Environ(), "DISPLAY="+display)
		if out, err := del.CombinedOutput(); err != nil {
			t.Fatalf("xrandr: %v\n%s", err, out)
		}
	}
	xtest.SetMonitors(t, display, xtest.Monitor{Name: "L", X: 640, Y: 0, Width: 640, Height: 480}, xtest.Monitor{Name: "R", X: 0, Y: 0, Width: 640, Height: 480})
	list, err := st.displays()
	if err != nil {
		t.Fatal(err)
	}
	st.follow(list) // as the host does each time the layout changes
	var shown protocol.Display
	for _, d := range list.Displays {
		if d.Index == list.Current {
			shown = d
		}
	}
	if x, y, w, h := st.current().Bounds(); x != shown.X || y != shown.Y || w != shown.Width || h != shown.Height {
		t.Errorf("monitor %d (%s) is now at %d,%d %dx%d; the stream grabs %d,%d %dx%d", shown.Index, shown.Name, shown.X, shown.Y, shown.Width, shown.Height, x, y, w, h)
	}
	if shown.X != 0 {
		t.Errorf("the monitor shown is at x=%d after the swap, want 0 (the test did not rearrange it)", shown.X)
	}
}
