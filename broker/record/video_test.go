package record

import (
	"bytes"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
)

// TestSegmentIsWebM: a sealed segment reads back with an independent EBML
// parser as the frames that went in: keyframes, times (a new cluster at
// each keyframe and every 30 s) and bytes, with the duration and size.
func TestSegmentIsWebM(t *testing.T) {
	type frame struct {
		ms   int64
		key  bool
		data []byte
	}
	var want []frame
	for i := range 40 {
		ms := int64(i) * 33
		if i >= 20 {
			ms += 40000 // a quiet minute: the next block is over 30 s later
		}
		data := bytes.Repeat([]byte{byte(i)}, 100+i*997)
		want = append(want, frame{ms: ms, key: i == 0 || i == 10, data: data})
	}
	s := newSegment(t.TempDir(), 1, 1000, 1920, 1080)
	for i, f := range want {
		// Captured from 5000 ms on: the keyframe arrives 120 ms after its
		// capture, frame 7 (the fastest) 2 ms after, the others 10 ms.
		delay := int64(10)
		switch i {
		case 0:
			delay = 120
		case 7:
			delay = 2
		}
		s.add(split(f.data, 1200), uint32(1000+f.ms*90), f.key, 5000+f.ms+delay) // as packets carry it
	}
	part, err := s.seal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if part.StartMS != 5002 {
		t.Errorf("segment starts at %d ms; its frames were captured from 5000 ms, the fastest arriving 2 ms later", part.StartMS)
	}
	raw, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) != part.Size {
		t.Fatalf("file is %d bytes, the manifest says %d", len(raw), part.Size)
	}
	var doc struct {
		Header  webm.EBMLHeader `ebml:"EBML"`
		Segment webm.Segment    `ebml:"Segment"`
	}
	if err := ebml.Unmarshal(bytes.NewReader(raw), &doc); err != nil {
		t.Fatalf("not a readable WebM file: %v", err)
	}
	if doc.Header.DocType != "webm" || doc.Segment.Info.Duration != float64(want[len(want)-1].ms+33) {
		t.Errorf("doc type %q, duration %v", doc.Header.DocType, doc.Segment.Info.Duration)
	}
	if v := doc.Segment.Tracks.TrackEntry[0].Video; doc.Segment.Tracks.TrackEntry[0].CodecID != "V_VP8" || v.PixelWidth != 1920 || v.PixelHeight != 1080 {
		t.Errorf("track %+v", doc.Segment.Tracks.TrackEntry[0])
	}
	var got []frame
	for _, c := range doc.Segment.Cluster {
		for _, b := range c.SimpleBlock {
			if b.TrackNumber != 1 || len(b.Data) != 1 {
				t.Fatalf("block on track %d with %d frames", b.TrackNumber, len(b.Data))
			}
			got = append(got, frame{ms: int64(c.Timecode) + int64(b.Timecode), key: b.Keyframe, data: b.Data[0]})
		}
	}
	if len(doc.Segment.Cluster) != 3 {
		t.Errorf("%d clusters, want 3 (the start, the second keyframe, after the quiet minute)", len(doc.Segment.Cluster))
	}
	if len(got) != len(want) {
		t.Fatalf("%d frames read back, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ms != want[i].ms || got[i].key != want[i].key || !bytes.Equal(got[i].data, want[i].data) {
			t.Errorf("frame %d: at %d ms key %v %d bytes, want at %d ms key %v %d bytes", i, got[i].ms, got[i].key, len(got[i].data), want[i].ms, want[i].key, len(want[i].data))
		}
	}
}

// split cuts a frame into pieces of at most n bytes.
func split(data []byte, n int) frameData {
	var f frameData
	for len(data) > n {
		f, data = append(f, data[:n]), data[n:]
	}
	return append(f, data)
}

// BenchmarkSegmentSeal writes 20 s of a 60 fps screen (3 KB frames in
// 1200-byte packets, a keyframe every 5 s) as one segment, as the broker
// does when it seals.
func BenchmarkSegmentSeal(b *testing.B) {
	dir := b.TempDir()
	frame := split(bytes.Repeat([]byte{7}, 3000), 1200)
	b.SetBytes(int64(frame.size()) * 1200)
	for i := range b.N {
		s := newSegment(dir, i, 0, 1920, 1080)
		for n := range 1200 {
			s.add(frame, uint32(n*1500), n%300 == 0, int64(n*1500/90))
		}
		if _, err := s.seal(nil); err != nil {
			b.Fatal(err)
		}
		os.Remove(s.path)
	}
}

// TestSegmentLengthFollowsTheLink: a segment asks for the keyframe that
// starts the next one after SegmentDuration, or, when its own keyframe took
// long to arrive or takes long to go out to a viewer (a narrow link), after
// ten times that long, so that these keyframes take at most a tenth of any
// link.
func TestSegmentLengthFollowsTheLink(t *testing.T) {
	for _, tc := range []struct {
		spread    time.Duration // how long a keyframe's packets take to arrive
		viewerBPS int           // what the narrowest viewer's link carries
		want      time.Duration // the length of a segment
	}{
		{0, 0, time.Second},
		{0, 10_000_000, time.Second},
		{500 * time.Millisecond, 0, 5 * time.Second},
		{0, 320_000, 5 * time.Second}, // a 20 KB keyframe takes 0.5 s to the viewer
	} {
		clock := &fakeClock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
		r, err := New(Config{Dir: t.TempDir(), Key: testKey(t), Now: clock.Now, SegmentDuration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		var asked atomic.Bool
		var sealed *Manifest
		s, err := r.Start(Info{Session: "s_link", RequestKeyframe: func() { asked.Store(true) }, OnSealed: func(m *Manifest) { sealed = m },
			ViewerBitrate: func() int { return tc.viewerBPS }})
		if err != nil {
			t.Fatal(err)
		}
		var p packetizer
		for i := range 160 { // 16 s at 10 frames/s; the host answers a request at the next frame
			key := i == 0 || asked.Swap(false)
			size := 500
			if key {
				size = 20_000
			}
			pkts := p.packets(vp8Frame(key, 640, 480, size), uint32(i*9000))
			for j, pkt := range pkts {
				if key && j > 0 {
					clock.Add(tc.spread / time.Duration(len(pkts)-1))
				}
				s.VideoPacket(pkt)
			}
			clock.Add(100 * time.Millisecond)
			// The recorder takes the frame in before the next one: on a busy
			// machine a fixed pause let frames pile up, and a keyframe asked
			// for late made a segment long.
			for len(s.queue) > 0 {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := s.Finish("done"); err != nil {
			t.Fatal(err)
		}
		var lengths []int64
		for _, part := range sealed.Parts {
			if part.Kind == KindVideo {
				lengths = append(lengths, part.DurationMS)
			}
		}
		if len(lengths) < 2 {
			t.Fatalf("keyframes arriving in %v, a viewer at %d bit/s: %d video segments in 16 s", tc.spread, tc.viewerBPS, len(lengths))
		}
		for _, ms := range lengths[:len(lengths)-1] {
			if got := time.Duration(ms) * time.Millisecond; got < tc.want-100*time.Millisecond || got > tc.want+500*time.Millisecond {
				t.Errorf("keyframes arriving in %v, a viewer at %d bit/s: segments of %v ms, want about %v", tc.spread, tc.viewerBPS, lengths, tc.want)
				break
			}
		}
	}
}

// BenchmarkRecordVideo records 10 s of a 60 fps screen (3 KB frames in
// three packets, a keyframe every 4 s) through a session, from the
// relay's packets to the sealed archive.
func BenchmarkRecordVideo(b *testing.B) {
	const frames = 600
	var p packetizer
	var pkts [][]*rtp.Packet
	for n := range frames {
		pkts = append(pkts, p.packets(vp8Frame(n%240 == 0, 1920, 1080, 3000), uint32(n*1500)))
	}
	key := testKey(b)
	b.SetBytes(3000 * frames)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		clock := &fakeClock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
		r, err := New(Config{Dir: b.TempDir(), Key: key, Now: clock.Now})
		if err != nil {
			b.Fatal(err)
		}
		s, err := r.Start(Info{Session: fmt.Sprintf("s_bench%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		for _, frame := range pkts {
			for _, pkt := range frame {
				s.VideoPacket(pkt)
			}
			clock.Add(16 * time.Millisecond)
		}
		if err := s.Finish("done"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLostFrameWaitsForKeyframe: the delta frames after a frame given up
// (a packet that never came) describe changes from a picture the archive
// lacks; they are counted, not written, until the keyframe the recorder
// asks for, and the video goes on from it.
func TestLostFrameWaitsForKeyframe(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	r, err := New(Config{Dir: t.TempDir(), Key: testKey(t), Now: clock.Now, SegmentDuration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	s, err := r.Start(Info{Session: "s_loss", RequestKeyframe: func() { asked++ }})
	if err != nil {
		t.Fatal(err)
	}
	var p packetizer
	for i := range 40 {
		pkts := p.packets(vp8Frame(i == 0 || i == 30, 320, 240, 1800), uint32(i*3000)) // 2 packets a frame
		for k, pkt := range pkts {
			if i == 5 && k == 1 {
				continue // lost on the way, never resent
			}
			s.VideoPacket(pkt)
		}
		clock.Add(100 * time.Millisecond) // past the wait for a missing packet
	}
	if err := s.Finish("done"); err != nil {
		t.Fatal(err)
	}
	m, _, err := ReadManifest(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var frames int64
	for _, p := range m.Parts {
		if p.Kind == KindVideo {
			frames += p.Frames
		}
	}
	// Frames 0-4, then 30-39 from the keyframe; 6-29 built on the lost 5.
	if frames != 15 || m.Video.Lost != 1 || m.Video.AfterLoss != 24 || m.Video.Written != 15 {
		t.Errorf("%d frames in the segments, stats %+v; want 15 written, 1 lost, 24 after the loss", frames, m.Video)
	}
	if asked == 0 {
		t.Error("no keyframe asked for after the loss")
	}
}

// TestStillScreenSealsItsSegment: the segment holding the screen's last
// change is sealed once the screen stays still, not kept in memory until
// the next change, for a broker killed meanwhile to lose; the next change
// starts a segment of its own at a keyframe.
func TestStillScreenSealsItsSegment(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	r, err := New(Config{Dir: t.TempDir(), Key: testKey(t), Now: clock.Now, SegmentDuration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Start(Info{Session: "s_still", RequestKeyframe: func() {}})
	if err != nil {
		t.Fatal(err)
	}
	var p packetizer
	frame := func(i int, key bool) {
		for _, pkt := range p.packets(vp8Frame(key, 320, 240, 1000), uint32(i*3000)) {
			s.VideoPacket(pkt)
		}
		clock.Add(33 * time.Millisecond)
	}
	// 1 s of changes, a keyframe each 0.5 s; the last change at 1 s.
	for i := 0; i <= 30; i++ {
		frame(i, i%15 == 0)
	}
	clock.Add(2 * time.Second) // still
	written := func(m *Manifest) (n int64) {
		for _, p := range m.Parts {
			if p.Kind == KindVideo {
				n += p.Frames
			}
		}
		return n
	}
	// What a broker killed now leaves: the archive as last sealed.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m, _, err := ReadManifest(s.Dir()); err == nil && written(m) == 31 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the segment with the last change was not sealed on a still screen")
		}
	}
	// The next change: a delta frame waits for the keyframe it asks for.
	frame(90, false)
	frame(91, true)
	frame(92, false)
	if err := s.Finish("done"); err != nil {
		t.Fatal(err)
	}
	m, _, err := ReadManifest(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if n := written(m); n != 33 || m.Video.BeforeKey != 1 {
		t.Errorf("%d frames written, %d before a keyframe (%+v); want 33 and 1", n, m.Video.BeforeKey, m.Video)
	}
}
