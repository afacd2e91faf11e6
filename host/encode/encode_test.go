package encode

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/vp8"
)

type rgb struct{ r, g, b byte }

func (c rgb) String() string { return fmt.Sprintf("#%02x%02x%02x", c.r, c.g, c.b) }

var (
	red   = rgb{0xff, 0, 0}
	green = rgb{0, 0xff, 0}
	blue  = rgb{0, 0, 0xff}
	white = rgb{0xff, 0xff, 0xff}
)

// bgra is a test image in the layout capture produces.
type bgra struct {
	w, h, stride int
	pix          []byte
}

// newBGRA allocates an image whose rows carry pad extra bytes, filled with
// a value that would show up as a colour if the stride were ignored.
func newBGRA(w, h, pad int) *bgra {
	m := &bgra{w: w, h: h, stride: 4*w + pad, pix: make([]byte, (4*w+pad)*h)}
	for i := range m.pix {
		m.pix[i] = 0x77
	}
	return m
}

func (m *bgra) fill(x0, y0, x1, y1 int, c rgb) {
	for y := max(y0, 0); y < min(y1, m.h); y++ {
		for x := max(x0, 0); x < min(x1, m.w); x++ {
			i := y*m.stride + 4*x
			m.pix[i], m.pix[i+1], m.pix[i+2], m.pix[i+3] = c.b, c.g, c.r, 0
		}
	}
}

// quadrants paints the xpattern test picture: red, green / blue, white.
func (m *bgra) quadrants() {
	hw, hh := m.w/2, m.h/2
	m.fill(0, 0, hw, hh, red)
	m.fill(hw, 0, m.w, hh, green)
	m.fill(0, hh, hw, m.h, blue)
	m.fill(hw, hh, m.w, m.h, white)
}

// decodeKey decodes a VP8 keyframe with the pure-Go decoder, an independent
// implementation of the bitstream.
func decodeKey(t *testing.T, frame []byte) *image.YCbCr {
	t.Helper()
	d := vp8.NewDecoder()
	d.Init(bytes.NewReader(frame), len(frame))
	fh, err := d.DecodeFrameHeader()
	if err != nil {
		t.Fatalf("decode VP8 frame header: %v", err)
	}
	if !fh.KeyFrame {
		t.Fatal("frame header says this is not a keyframe")
	}
	img, err := d.DecodeFrame()
	if err != nil {
		t.Fatalf("decode VP8 keyframe: %v", err)
	}
	return img
}

// at converts a decoded pixel to RGB with BT.601 limited range, the matrix
// libyuv encodes with (and browsers decode VP8 with). Go's color.YCbCr
// assumes full range and would be off by up to 16 levels.
func at(img *image.YCbCr, x, y int) rgb {
	yy := float64(img.Y[img.YOffset(x, y)]) - 16
	cb := float64(img.Cb[img.COffset(x, y)]) - 128
	cr := float64(img.Cr[img.COffset(x, y)]) - 128
	clamp := func(v float64) byte { return byte(min(255, max(0, v+0.5))) }
	return rgb{
		clamp(1.164*yy + 1.596*cr),
		clamp(1.164*yy - 0.392*cb - 0.813*cr),
		clamp(1.164*yy + 2.017*cb),
	}
}

func near(a, b rgb, tol int) bool {
	d := func(x, y byte) int { return max(int(x)-int(y), int(y)-int(x)) }
	return d(a.r, b.r) <= tol && d(a.g, b.g) <= tol && d(a.b, b.b) <= tol
}

// checkQuadrants samples each quadrant away from the edges, where the
// chroma of two colours mixes.
func checkQuadrants(t *testing.T, img *image.YCbCr, w, h int) {
	t.Helper()
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("decoded %v, want %dx%d", b, w, h)
	}
	hw, hh := w/2, h/2
	for _, q := range []struct {
		x0, y0, x1, y1 int
		c              rgb
	}{{0, 0, hw, hh, red}, {hw, 0, w, hh, green}, {0, hh, hw, h, blue}, {hw, hh, w, h, white}} {
		for _, p := range [][2]int{
			{q.x0 + 8, q.y0 + 8}, {q.x1 - 9, q.y0 + 8}, {q.x0 + 8, q.y1 - 9}, {q.x1 - 9, q.y1 - 9},
			{(q.x0 + q.x1) / 2, (q.y0 + q.y1) / 2},
		} {
			if got := at(img, p[0], p[1]); !near(got, q.c, 12) {
				t.Errorf("decoded pixel %d,%d = %v, want %v", p[0], p[1], got, q.c)
			}
		}
	}
}

// mustVP8 starts an encoder; unless cfg sets a clock, its frames are
// 1/FPS apart however fast the test encodes them.
func mustVP8(t testing.TB, cfg Config) *VP8 {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = frameClock(max(cfg.FPS, 30))
	}
	e, err := NewVP8(cfg)
	if err != nil {
		t.Fatalf("NewVP8(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// frameClock is a clock that moves on 1/fps each time it is read.
func frameClock(fps int) func() time.Time {
	now := time.Unix(1_000_000, 0)
	return func() time.Time {
		now = now.Add(time.Second / time.Duration(fps))
		return now
	}
}

func TestKeyframeDecodes(t *testing.T) {
	for _, tc := range []struct{ w, h, pad, threads int }{
		{640, 480, 0, 1},
		{1280, 720, 64, 1}, // padded rows, as XShm may return
		{641, 361, 4, 1},   // odd sizes
		{1920, 1080, 0, 1},
		{1920, 1080, 0, 2}, // two threads, two token partitions
	} {
		t.Run(fmt.Sprintf("%dx%d+%d/threads-%d", tc.w, tc.h, tc.pad, tc.threads), func(t *testing.T) {
			m := newBGRA(tc.w, tc.h, tc.pad)
			m.quadrants()
			e := mustVP8(t, Config{Width: tc.w, Height: tc.h, Threads: tc.threads})
			frame, key, err := e.Encode(m.pix, m.stride, false)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !key || len(frame) == 0 {
				t.Fatalf("first frame: key %v, %d bytes; want a keyframe", key, len(frame))
			}
			// The frame tag's version: profile 3, no loop filter.
			if v := frame[0] >> 1 & 7; v != 3 {
				t.Errorf("VP8 version %d, want 3", v)
			}
			checkQuadrants(t, decodeKey(t, frame), tc.w, tc.h)
		})
	}
}

// moving paints the quadrants with a 64x64 black square at step's position,
// a small change per frame like a dragged window or a typing cursor.
func moving(m *bgra, step int) {
	m.quadrants()
	x := (step * 16) % (m.w - 64)
	m.fill(x, m.h/4, x+64, m.h/4+64, rgb{})
}

func TestForceKeyAndDeltas(t *testing.T) {
	const w, h = 640, 480
	m := newBGRA(w, h, 0)
	e := mustVP8(t, Config{Width: w, Height: h})
	moving(m, 0)
	keyFrame, key, err := e.Encode(m.pix, m.stride, false)
	if err != nil || !key {
		t.Fatalf("first frame: key %v, err %v", key, err)
	}
	keySize := len(keyFrame)
	deltas := 0
	for i := 1; i < 20; i++ {
		moving(m, i)
		frame, key, err := e.Encode(m.pix, m.stride, false)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if key {
			t.Fatalf("frame %d is a keyframe; keyframes must come only on request", i)
		}
		if len(frame) == 0 {
			t.Fatalf("delta frame %d is empty", i)
		}
		deltas += len(frame)
	}
	// A delta may come near this keyframe's size (it is small: flat
	// quadrants) while the rate control spends its budget; on average
	// deltas are smaller.
	if mean := deltas / 19; mean >= keySize {
		t.Errorf("delta frames average %d bytes, keyframe %d: want deltas, not pictures coded afresh", mean, keySize)
	}
	moving(m, 20)
	frame, key, err := e.Encode(m.pix, m.stride, true)
	if err != nil {
		t.Fatalf("forced keyframe: %v", err)
	}
	if !key {
		t.Fatal("forceKey produced a delta frame")
	}
	// The keyframe holds the current picture: the square has moved to x=320.
	img := decodeKey(t, frame)
	if got := at(img, 320+32, h/4+32); !near(got, rgb{}, 12) {
		t.Errorf("inside the moved square: %v, want black", got)
	}
	if got := at(img, 20*16-32, h/4+32); !near(got, red, 12) {
		t.Errorf("where the square was: %v, want red", got)
	}
	if _, key, _ := e.Encode(m.pix, m.stride, false); key {
		t.Error("the frame after a forced keyframe is a keyframe too")
	}
}

// TestQuantizerReachesFinest: a still picture encoded again and again
// reaches the finest quantizer, where the stream stops refining it, and a
// busy picture at a low bitrate stays coarser.
func TestQuantizerReachesFinest(t *testing.T) {
	const w, h = 640, 480
	m := newBGRA(w, h, 0)
	m.quadrants()
	e := mustVP8(t, Config{Width: w, Height: h})
	var qs []int
	for range 30 {
		if _, _, err := e.Encode(m.pix, m.stride, false); err != nil {
			t.Fatal(err)
		}
		qs = append(qs, e.Quantizer())
	}
	if qs[len(qs)-1] != FinestQuantizer {
		t.Errorf("quantizers of a still picture: %v; want to end at %d", qs, FinestQuantizer)
	}

	busy := desktop(w, h)
	a := newAnimator(busy)
	e = mustVP8(t, Config{Width: w, Height: h, BitrateKbps: 100})
	for range 10 {
		a.next()
		if _, _, err := e.Encode(busy.pix, busy.stride, false); err != nil {
			t.Fatal(err)
		}
	}
	if q := e.Quantizer(); q <= FinestQuantizer || q > 63 {
		t.Errorf("a busy picture at 100 kbps: quantizer %d, want coarser than %d", q, FinestQuantizer)
	}
}

// TestBudgetFollowsTime: the rate control budgets a frame by the time
// since the previous one, so a picture refined every 100 ms (as the host
// sharpens a still screen) reaches the finest quantizer in fewer frames
// than one refined at 60 frames a second.
func TestBudgetFollowsTime(t *testing.T) {
	const w, h = 640, 480
	m := desktop(w, h)
	framesToFinest := func(fps int) int {
		e := mustVP8(t, Config{Width: w, Height: h, FPS: 60, BitrateKbps: 1000, Now: frameClock(fps)})
		for i := 1; i <= 60; i++ {
			if _, _, err := e.Encode(m.pix, m.stride, false); err != nil {
				t.Fatal(err)
			}
			if e.Settled() {
				return i
			}
		}
		return 61
	}
	if slow, fast := framesToFinest(10), framesToFinest(60); slow >= fast {
		t.Errorf("frames to the finest quantizer: %d at 10 a second, %d at 60; want fewer at 10", slow, fast)
	} else {
		t.Logf("frames to the finest quantizer: %d at 10 a second, %d at 60", slow, fast)
	}
}

// TestEncodeAreaRepeatsTheRest: EncodeArea codes only the macroblocks that
// meet the area. What a decoder shows elsewhere stays exactly as it was,
// even though the pixels passed there are garbage; the area shows the new
// picture, and frames with an empty area refine it to the finest
// quantizer; with one thread and with two, as hosts with 3 CPUs or more
// encode.
func TestEncodeAreaRepeatsTheRest(t *testing.T) {
	for _, threads := range []int{1, 2} {
		t.Run(fmt.Sprintf("threads-%d", threads), func(t *testing.T) { testEncodeArea(t, threads) })
	}
}

func testEncodeArea(t *testing.T, threads int) {
	const w, h = 320, 240
	m := newBGRA(w, h, 0)
	m.quadrants()
	e := mustVP8(t, Config{Width: w, Height: h, Threads: threads})
	for i := 0; i == 0 || !e.Settled(); i++ {
		if i == 30 {
			t.Fatalf("a still picture never reached the finest quantizer: %d", e.Quantizer())
		}
		if _, _, err := e.Encode(m.pix, m.stride, false); err != nil {
			t.Fatal(err)
		}
	}
	before, err := e.decodedLuma()
	if err != nil {
		t.Fatal(err)
	}
	// A low bitrate, so that the change is coded coarse first; refined
	// once the bitrate is back.
	if err := e.SetBitrate(10); err != nil {
		t.Fatal(err)
	}

	// Busy text lands in an area that is not macroblock-aligned.
	area := image.Rect(70, 50, 230, 170)
	text := desktop(w, h)
	for y := area.Min.Y; y < area.Max.Y; y++ {
		copy(m.pix[y*m.stride+4*area.Min.X:], text.pix[y*text.stride+4*area.Min.X:][:4*area.Dx()])
	}
	want := NewI420(w, h)
	ToI420(want, m.pix, m.stride, w, h)
	passed := &bgra{w: w, h: h, stride: m.stride, pix: slices.Clone(m.pix)}
	coded := macroblocks(area)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if !image.Pt(x, y).In(coded) {
				i := y*passed.stride + 4*x
				passed.pix[i], passed.pix[i+1], passed.pix[i+2] = ^passed.pix[i], ^passed.pix[i+1], ^passed.pix[i+2]
			}
		}
	}

	check := func(step string, maxErr float64) {
		t.Helper()
		got, err := e.decodedLuma()
		if err != nil {
			t.Fatal(err)
		}
		var sum, n float64
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				i := y*w + x
				if !image.Pt(x, y).In(coded) {
					if got[i] != before[i] {
						t.Fatalf("%s: luma at %d,%d outside the coded %v changed: %d, was %d", step, x, y, coded, got[i], before[i])
					}
					continue
				}
				sum += math.Abs(float64(got[i]) - float64(want.Y[y*want.StrideY+x]))
				n++
			}
		}
		if mean := sum / n; mean > maxErr {
			t.Errorf("%s: mean luma error in the area %.2f, want at most %.2f", step, mean, maxErr)
		}
	}
	if _, key, err := e.EncodeArea(passed.pix, passed.stride, false, area); err != nil || key {
		t.Fatalf("encode the change: key %v, err %v; want a delta frame", key, err)
	}
	check("the change", 12)
	firstQ := e.Quantizer()
	if firstQ <= FinestQuantizer || e.Settled() {
		t.Fatalf("the change was coded at quantizer %d (settled %v): nothing to refine", firstQ, e.Settled())
	}
	if err := e.SetBitrate(DefaultBitrateKbps(w, h)); err != nil {
		t.Fatal(err)
	}
	frames := 0
	for !e.Settled() {
		if frames++; frames > 40 {
			t.Fatalf("the area never reached the finest quantizer: %d after %d frames", e.Quantizer(), frames)
		}
		if _, _, err := e.EncodeArea(passed.pix, passed.stride, false, image.Rectangle{}); err != nil {
			t.Fatal(err)
		}
	}
	check("refined", 1.5)
	t.Logf("change coded at quantizer %d, refined to %d in %d frames", firstQ, e.Quantizer(), frames)
}

// TestEncodeAreaIsFaster: at 1920x1080 a small change costs a fraction of
// a whole frame, which libvpx's active map is for (fastest of several
// interleaved runs, so that a busy machine does not decide).
func TestEncodeAreaIsFaster(t *testing.T) {
	const w, h = 1920, 1080
	m := desktop(w, h)
	a := newAnimator(m)
	whole, part := mustVP8(t, Config{Width: w, Height: h, Threads: 1}), mustVP8(t, Config{Width: w, Height: h, Threads: 1})
	fastest := func(e *VP8, area image.Rectangle) time.Duration {
		start := time.Now()
		if _, _, err := e.EncodeArea(m.pix, m.stride, false, area); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	full := image.Rect(0, 0, w, h)
	fastest(whole, full)
	fastest(part, full)
	var tWhole, tPart time.Duration = time.Hour, time.Hour
	for range 15 {
		before := image.Rect(a.x, a.y, a.x+boxW, a.y+boxH)
		a.next()
		box := image.Rect(a.x, a.y, a.x+boxW, a.y+boxH).Union(before)
		tWhole = min(tWhole, fastest(whole, full))
		tPart = min(tPart, fastest(part, box))
	}
	t.Logf("a %dx%d box moving: whole frame %v, its area %v", boxW, boxH, tWhole, tPart)
	if tPart > tWhole*6/10 {
		t.Errorf("coding the moving box's area took %v, the whole frame %v: want at most 60 %%", tPart, tWhole)
	}
}

// noisy fills the top-left quadrant with fresh mid-grey noise: content the
// encoder cannot predict, so the frame size follows the bitrate. (Full-range
// noise would exceed 500 kbps even at the coarsest quantizer.)
func noisy(m *bgra, r *rand.Rand) {
	m.quadrants()
	for y := 0; y < m.h/2; y++ {
		row := m.pix[y*m.stride : y*m.stride+4*m.w/2]
		for i := range row {
			row[i] = byte(96 + r.IntN(64))
		}
	}
}

// TestKeyframeAfterStillMoment: a keyframe after seconds of a still
// screen (a viewer joined) is not given those seconds of bitrate: it would
// take them on the link, and hold up every frame after it.
func TestKeyframeAfterStillMoment(t *testing.T) {
	const w, h = 640, 480
	m := newBGRA(w, h, 0)
	r := rand.New(rand.NewPCG(3, 4))
	now := time.Unix(1700000000, 0)
	e := mustVP8(t, Config{Width: w, Height: h, FPS: 30, BitrateKbps: 500, Now: func() time.Time { return now }})
	encode := func(gap time.Duration, key bool) int {
		now = now.Add(gap)
		noisy(m, r)
		frame, _, err := e.Encode(m.pix, m.stride, key)
		if err != nil {
			t.Fatal(err)
		}
		return len(frame)
	}
	for range 60 { // the rate control settles at 30 frames a second
		encode(time.Second/30, false)
	}
	settling := encode(100*time.Millisecond, true) // a keyframe among settle frames
	for range 30 {
		encode(time.Second/30, false)
	}
	after := encode(3*time.Second, true)
	t.Logf("keyframe 100 ms after a frame: %d bytes; 3 s after: %d", settling, after)
	if after > settling*3/2 {
		t.Errorf("a keyframe after 3 s of stillness is %d bytes, one 100 ms after a frame %d: the still seconds were spent on it", after, settling)
	}
}

func TestSetBitrate(t *testing.T) {
	const w, h = 640, 480
	m := newBGRA(w, h, 0)
	r := rand.New(rand.NewPCG(1, 2))
	e := mustVP8(t, Config{Width: w, Height: h, FPS: 30, BitrateKbps: 4000})
	mean := func() int {
		total := 0
		for i := 0; i < 30; i++ {
			noisy(m, r)
			frame, _, err := e.Encode(m.pix, m.stride, false)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			total += len(frame)
		}
		return total / 30
	}
	mean() // let the rate control settle
	high := mean()
	if err := e.SetBitrate(500); err != nil {
		t.Fatalf("SetBitrate(500): %v", err)
	}
	mean()
	low := mean()
	// The budget is bitrate / 8 / FPS: 16.7 KB a frame at 4000 kbps, 2.1 KB
	// at 500 kbps. CBR keeps close to it; allow 1.5x either way.
	for _, m := range []struct{ kbps, got int }{{4000, high}, {500, low}} {
		budget := m.kbps * 1000 / 8 / 30
		if m.got < budget*2/3 || m.got > budget*3/2 {
			t.Errorf("mean frame at %d kbps: %d bytes, want about %d", m.kbps, m.got, budget)
		}
	}
	for _, bad := range []int{0, -1, maxKbps + 1} {
		if err := e.SetBitrate(bad); err == nil {
			t.Errorf("SetBitrate(%d) succeeded", bad)
		}
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "size 0x0"},
		{Config{Width: 640}, "size 640x0"},
		{Config{Width: -2, Height: 480}, "size -2x480"},
		{Config{Width: maxDimension + 1, Height: 480}, "must be 1..16383"},
		{Config{Width: 640, Height: 480, FPS: -1}, "FPS -1"},
		{Config{Width: 640, Height: 480, BitrateKbps: -5}, "bitrate -5"},
		{Config{Width: 640, Height: 480, Threads: -1}, "threads -1"},
		{Config{Width: 640, Height: 480, CPUUsed: 17}, "CPUUsed 17"},
	} {
		e, err := NewVP8(tc.cfg)
		if err == nil {
			e.Close()
			t.Errorf("NewVP8(%+v) succeeded", tc.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewVP8(%+v): %q does not mention %q", tc.cfg, err, tc.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	for _, tc := range []struct{ w, h, kbps int }{{1920, 1080, 4000}, {1280, 720, 1777}, {320, 240, 300}} {
		cfg := Config{Width: tc.w, Height: tc.h}
		if err := cfg.checkAndSetDefaults(); err != nil {
			t.Fatal(err)
		}
		threads := DefaultThreads(tc.w, tc.h, runtime.NumCPU())
		if cfg.FPS != 30 || cfg.Threads != threads || cfg.CPUUsed != 8 || cfg.BitrateKbps != tc.kbps {
			t.Errorf("defaults for %dx%d: %+v, want 30 fps, %d threads, CPUUsed 8, %d kbps", tc.w, tc.h, cfg, threads, tc.kbps)
		}
	}
}

func TestDefaultThreads(t *testing.T) {
	for _, tc := range []struct{ w, h, cpus, want int }{
		{1920, 1080, 1, 1},
		{1920, 1080, 2, 1}, // two cores: a spinning thread stalls the frame when both are busy
		{1920, 1080, 4, 2},
		{1920, 1080, 16, 3},
		{1280, 720, 16, 2},
		{640, 480, 16, 1}, // small frames encode fast enough alone
	} {
		if got := DefaultThreads(tc.w, tc.h, tc.cpus); got != tc.want {
			t.Errorf("DefaultThreads(%d, %d, %d) = %d, want %d", tc.w, tc.h, tc.cpus, got, tc.want)
		}
	}
}

func TestEncodeBadInput(t *testing.T) {
	const w, h = 64, 48
	e := mustVP8(t, Config{Width: w, Height: h})
	m := newBGRA(w, h, 0)
	if _, _, err := e.Encode(m.pix[:len(m.pix)-1], m.stride, false); err == nil {
		t.Error("Encode accepted a buffer one byte short")
	}
	if _, _, err := e.Encode(m.pix, 4*w-4, false); err == nil {
		t.Error("Encode accepted a stride shorter than a row")
	}
	if _, _, err := e.Encode(nil, m.stride, false); err == nil {
		t.Error("Encode accepted no pixels")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Encode(m.pix, m.stride, false); !errors.Is(err, ErrClosed) {
		t.Errorf("Encode after Close: %v, want ErrClosed", err)
	}
	if err := e.SetBitrate(1000); !errors.Is(err, ErrClosed) {
		t.Errorf("SetBitrate after Close: %v, want ErrClosed", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestEncodeDoesNotAllocate guards the per-frame path: at 60 frames a
// second, garbage would show up as GC pauses in the video.
func TestEncodeDoesNotAllocate(t *testing.T) {
	const w, h = 640, 480
	m := newBGRA(w, h, 0)
	e := mustVP8(t, Config{Width: w, Height: h})
	step := 0
	encode := func() {
		moving(m, step)
		step++
		if _, _, err := e.Encode(m.pix, m.stride, step%10 == 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ { // grow the output buffer to a keyframe's size
		encode()
	}
	if n := testing.AllocsPerRun(30, encode); n != 0 {
		t.Errorf("Encode allocates %v times per frame, want 0", n)
	}
}

func TestToI420(t *testing.T) {
	// libyuv's BT.601 limited range: Y = 16 + (66R + 129G + 25B) / 256 etc.
	for _, tc := range []struct {
		c       rgb
		y, u, v int
	}{
		{red, 82, 90, 240},
		{green, 144, 54, 34},
		{blue, 41, 240, 110},
		{white, 235, 128, 128},
		{rgb{}, 16, 128, 128},
	} {
		m := newBGRA(7, 5, 8) // odd, padded
		m.fill(0, 0, 7, 5, tc.c)
		dst := NewI420(7, 5)
		ToI420(dst, m.pix, m.stride, 7, 5)
		if len(dst.U) != 4*3 || dst.StrideUV != 4 {
			t.Fatalf("chroma plane of 7x5: %d bytes, stride %d; want 4x3", len(dst.U), dst.StrideUV)
		}
		check := func(plane string, got []byte, want int) {
			for i, v := range got {
				if int(v) < want-1 || int(v) > want+1 {
					t.Errorf("%v: %s[%d] = %d, want %d±1", tc.c, plane, i, v, want)
					return
				}
			}
		}
		check("Y", dst.Y, tc.y)
		check("U", dst.U, tc.u)
		check("V", dst.V, tc.v)
	}
}

func TestToI420PanicsOnShortBuffers(t *testing.T) {
	m := newBGRA(16, 16, 0)
	for name, f := range map[string]func(){
		"short source": func() { ToI420(NewI420(16, 16), m.pix[:100], m.stride, 16, 16) },
		"short stride": func() { ToI420(NewI420(16, 16), m.pix, 60, 16, 16) },
		"small planes": func() { ToI420(NewI420(16, 8), m.pix, m.stride, 16, 16) },
		"zero size":    func() { ToI420(NewI420(16, 16), m.pix, m.stride, 0, 16) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: ToI420 did not panic", name)
				}
			}()
			f()
		}()
	}
}
