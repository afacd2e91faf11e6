package record

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// Bounds of frame reassembly.
const (
	// maxFrameWait is how long a frame waits for a missing packet: one
	// lost on the host's upload is resent when the broker asks for it,
	// within a few round trips.
	maxFrameWait = time.Second
	// maxWaitingPackets bounds the packets held meanwhile (about 5 MB).
	maxWaitingPackets = 4096
)

// frameAssembler rebuilds VP8 frames, in order, from the RTP packets the
// relay forwards. Packets may come out of order or twice: one lost on the
// way from the host comes again, later, when the broker asks for it. A
// frame missing a packet that later packets overtook waits for it up to
// maxFrameWait, and the frames after it wait with it; then it is given up
// and counted lost. A frame still arriving (a keyframe takes seconds on a
// narrow link) is not missing anything yet.
type frameAssembler struct {
	waiting map[uint16]waitingPacket // by sequence number
	head    uint16                   // where the next frame starts
	newest  uint16                   // the highest sequence number come
	started bool                     // head is known: a frame's start came
	blocked time.Time                // since when the frame at head has been missing a packet
	depack  codecs.VP8Packet
	arrival time.Duration // how long the last whole frame took to arrive
}

type waitingPacket struct {
	payload     []byte // VP8 payload, without its descriptor
	start, last bool   // it starts a frame, it ends one
	ts          uint32
	at          time.Time
}

// push adds a packet that arrived at at.
func (a *frameAssembler) push(pkt *rtp.Packet, at time.Time) {
	payload, err := a.depack.Unmarshal(pkt.Payload)
	if err != nil {
		return // not VP8: its frame will miss it
	}
	start := a.depack.S == 1 && a.depack.PID == 0 // RFC 7741 4.4
	if !a.started {
		if !start {
			return // the middle of a frame whose start was never seen
		}
		a.head, a.newest, a.started = pkt.SequenceNumber, pkt.SequenceNumber, true
	}
	if int16(pkt.SequenceNumber-a.head) < 0 {
		return // a frame already made or given up
	}
	if int16(pkt.SequenceNumber-a.newest) > 0 {
		a.newest = pkt.SequenceNumber
	}
	if a.waiting == nil {
		a.waiting = map[uint16]waitingPacket{}
	}
	a.waiting[pkt.SequenceNumber] = waitingPacket{payload: payload, start: start, last: pkt.Marker, ts: pkt.Timestamp, at: at}
}

// next returns the next frame once it is whole, with its RTP timestamp
// and when its last packet arrived. A frame that has been missing a packet
// for maxFrameWait at now, or at all with giveUp, is skipped and counted
// in lost; nil means no frame is ready.
func (a *frameAssembler) next(now time.Time, giveUp bool) (frame frameData, ts uint32, at time.Time, lost int) {
	for len(a.waiting) > 0 {
		frame, ts, at, missing, ok := a.take()
		if ok {
			a.blocked = time.Time{}
			return frame, ts, at, lost
		}
		arriving := int16(a.newest-missing) < 0 // nothing came after the packet it lacks
		if arriving {
			a.blocked = time.Time{}
		} else if a.blocked.IsZero() {
			a.blocked = now
		}
		if !giveUp && len(a.waiting) <= maxWaitingPackets && (arriving || now.Sub(a.blocked) < maxFrameWait) {
			return nil, 0, time.Time{}, lost
		}
		a.skip()
		a.blocked = time.Time{}
		lost++
	}
	return nil, 0, time.Time{}, lost
}

// frameData is a VP8 frame as the payloads of its RTP packets, in order:
// kept as they came, a frame is not copied again on its way to the file.
type frameData [][]byte

func (f frameData) size() int {
	n := 0
	for _, p := range f {
		n += len(p)
	}
	return n
}

// take removes and returns the frame starting at a.head when every packet
// of it is there; otherwise missing is where it first falls short.
func (a *frameAssembler) take() (frame frameData, ts uint32, last time.Time, missing uint16, ok bool) {
	first, ok := a.waiting[a.head]
	if !ok || !first.start {
		return nil, 0, time.Time{}, a.head, false
	}
	end, n := a.head, 1
	earliest, last := first.at, first.at
	for p := first; !p.last; n++ {
		end++
		if p, ok = a.waiting[end]; !ok || p.start {
			return nil, 0, time.Time{}, end, false // a packet missing, or the end
		}
		earliest, last = minTime(earliest, p.at), maxTime(last, p.at)
	}
	frame = make(frameData, 0, n)
	for seq := a.head; seq != end+1; seq++ {
		frame = append(frame, a.waiting[seq].payload)
		delete(a.waiting, seq)
	}
	a.head = end + 1
	a.arrival = last.Sub(earliest)
	return frame, first.ts, last, 0, true
}

// skip gives up the frame at a.head: the next frame starts at the nearest
// waiting packet that starts one, and the packets before it are dropped.
func (a *frameAssembler) skip() {
	var to uint16
	found := false
	for seq, p := range a.waiting {
		if p.start && int16(seq-a.head) > 0 && (!found || int16(seq-to) < 0) {
			to, found = seq, true
		}
	}
	for seq := range a.waiting {
		if !found || int16(seq-to) < 0 {
			delete(a.waiting, seq)
		}
	}
	if found {
		a.head = to
	} else {
		a.started = false // wait for a frame's start
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// isKeyframe reports whether a VP8 frame is a keyframe, and its size.
func isKeyframe(frame frameData) (key bool, width, height int) {
	f := make([]byte, 0, 10) // the frame's first 10 bytes
	for _, p := range frame {
		if len(f) == cap(f) {
			break
		}
		f = append(f, p[:min(len(p), cap(f)-len(f))]...)
	}
	if len(f) < 10 || f[0]&1 != 0 || f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
		return false, 0, 0
	}
	return true, int(f[6]) | int(f[7]&0x3f)<<8, int(f[8]) | int(f[9]&0x3f)<<8
}

// maxSegmentBytes bounds the video a segment holds in memory before it is
// written: past it, the segment is sealed at the next keyframe and frames
// are dropped (and counted) until one comes.
const maxSegmentBytes = 64 << 20

// segment is one WebM file in the making. It starts with a keyframe; its
// frames are kept in memory and written, complete with duration, in one go
// when it is sealed, then fsynced: a sealed segment is a finished file
// that any player opens, and a crash loses only the segment in progress.
type segment struct {
	name          string
	path          string
	firstTS       uint32
	lastMS        int64
	startMS       int64 // on the session's timeline: see add
	frames        int64
	bytes         int
	keyTime       time.Duration // how long its keyframe took to reach everyone
	width, height int
	clusters      []cluster
}

// cluster is a run of frames from one keyframe on, at most 30 s long:
// a block's time is a 16-bit offset from its cluster's.
type cluster struct {
	ms     int64
	blocks []block
}

type block struct {
	offset int16 // ms after the cluster's start
	key    bool
	data   frameData
}

func newSegment(dir string, n int, firstTS uint32, width, height int) *segment {
	name := fmt.Sprintf("video-%04d.webm", n)
	return &segment{name: name, path: filepath.Join(dir, name), firstTS: firstTS, width: width, height: height}
}

func (s *segment) full() bool { return s.bytes >= maxSegmentBytes }

// add appends a frame, which it keeps; ts is its RTP timestamp and atMS
// when it arrived, on the session's timeline.
//
// The segment starts where its frames say, placed by the one that came
// fastest: every frame arrives some time after the host captured it (its
// timestamp), a small one soon after and a keyframe, the segment's first,
// up to a tenth of a second later or more on a slow link. Placed by the
// keyframe's arrival, the whole segment would play that much late, after
// the clicks that changed the screen.
func (s *segment) add(frame frameData, ts uint32, key bool, atMS int64) {
	ms := int64(ts-s.firstTS) / 90 // VP8 RTP clock is 90 kHz
	if ms < s.lastMS || ms > 1<<40 {
		ms = s.lastMS
	}
	if start := max(0, atMS-ms); s.frames == 0 || start < s.startMS {
		s.startMS = start
	}
	if len(s.clusters) == 0 || key || ms-s.clusters[len(s.clusters)-1].ms > 30000 {
		s.clusters = append(s.clusters, cluster{ms: ms})
	}
	c := &s.clusters[len(s.clusters)-1]
	c.blocks = append(c.blocks, block{offset: int16(ms - c.ms), key: key, data: frame})
	s.lastMS = ms
	s.frames++
	s.bytes += frame.size()
}

// The Matroska element ids written by hand; the small head of the file
// (EBML header, segment info, track) goes through ebml-go.
var (
	idSegment     = []byte{0x18, 0x53, 0x80, 0x67}
	idCluster     = []byte{0x1f, 0x43, 0xb6, 0x75}
	idTimecode    = []byte{0xe7}
	idSimpleBlock = []byte{0xa3}
)

// appendHeader appends an element's id and its size, as an 8-byte EBML
// number (a 0x01 length marker and 7 bytes of size).
func appendHeader(dst, id []byte, size int) []byte {
	return binary.BigEndian.AppendUint64(append(dst, id...), 1<<56|uint64(size))
}

// Sizes of the hand-written elements, headers included.
const (
	timecodeSize     = 1 + 8 + 8 // id, size, 8-byte value
	simpleBlockExtra = 1 + 8 + 4 // id, size, track number, timecode, flags
)

func (c *cluster) bodySize() int {
	n := timecodeSize
	for _, b := range c.blocks {
		n += simpleBlockExtra + b.data.size()
	}
	return n
}

// writeCluster writes c without copying its frames into another buffer.
// ebml-go would marshal each level into a buffer of its own; a segment is
// up to 64 MiB, and those copies were most of what recording cost.
func writeCluster(w io.Writer, c *cluster) error {
	head := appendHeader(nil, idCluster, c.bodySize())
	head = binary.BigEndian.AppendUint64(appendHeader(head, idTimecode, 8), uint64(c.ms))
	if _, err := w.Write(head); err != nil {
		return err
	}
	for _, b := range c.blocks {
		flags := byte(0)
		if b.key {
			flags = 0x80
		}
		head = appendHeader(head[:0], idSimpleBlock, 4+b.data.size())
		head = append(head, 0x81, byte(uint16(b.offset)>>8), byte(b.offset), flags) // track 1
		if _, err := w.Write(head); err != nil {
			return err
		}
		for _, p := range b.data {
			if _, err := w.Write(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// segmentHead is what comes before the clusters inside the Segment.
type segmentHead struct {
	Info   webm.Info   `ebml:"Info"`
	Tracks webm.Tracks `ebml:"Tracks"`
}

// writeWebM writes the whole file: EBML header, then a Segment of the
// head and the clusters.
func (s *segment) writeWebM(w io.Writer, duration int64) error {
	var head bytes.Buffer
	if err := ebml.Marshal(&struct {
		Header webm.EBMLHeader `ebml:"EBML"`
	}{*webm.DefaultEBMLHeader}, &head); err != nil {
		return err
	}
	header := head.Len()
	if err := ebml.Marshal(&segmentHead{
		Info: webm.Info{TimecodeScale: 1000000, MuxingApp: "tether", WritingApp: "tether broker", Duration: float64(duration)},
		Tracks: webm.Tracks{TrackEntry: []webm.TrackEntry{{
			Name: "screen", TrackNumber: 1, TrackUID: 1, CodecID: "V_VP8", TrackType: 1,
			Video: &webm.Video{PixelWidth: uint64(s.width), PixelHeight: uint64(s.height)},
		}}},
	}, &head); err != nil {
		return err
	}
	size := head.Len() - header
	for i := range s.clusters {
		size += len(idCluster) + 8 + s.clusters[i].bodySize() // id, 8-byte size, body
	}
	if _, err := w.Write(head.Bytes()[:header]); err != nil {
		return err
	}
	if _, err := w.Write(appendHeader(nil, idSegment, size)); err != nil {
		return err
	}
	if _, err := w.Write(head.Bytes()[header:]); err != nil {
		return err
	}
	for i := range s.clusters {
		if err := writeCluster(w, &s.clusters[i]); err != nil {
			return err
		}
	}
	return nil
}

// seal writes the segment as a WebM file, fsyncs it and returns it as a
// manifest part.
func (s *segment) seal(key []byte) (Part, error) {
	// The last frame lasts until the next would have come (~1/30 s).
	duration := s.lastMS + 33
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return Part{}, fmt.Errorf("create video segment: %w", err)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 256<<10)
	if key == nil {
		err = s.writeWebM(bw, duration)
	} else {
		plain := bytes.NewBuffer(make([]byte, 0, s.bytes+len(s.clusters)*64+int(s.frames)*simpleBlockExtra+4096))
		enc, cerr := newPartCipher(key, s.name)
		if err = cerr; err == nil {
			if err = s.writeWebM(plain, duration); err == nil {
				_, err = bw.Write(enc.seal(plain.Bytes()))
			}
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	s.clusters = nil
	if err != nil {
		// Not written whole, it is no segment: it gives back its room,
		// for the seal of the failure (the disk full).
		os.Remove(s.path)
		return Part{}, fmt.Errorf("write video segment %s: %w", s.name, err)
	}
	return Part{Name: s.name, Kind: KindVideo, Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil)), StartMS: s.startMS,
		DurationMS: duration, Frames: s.frames, Width: s.width, Height: s.height}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
