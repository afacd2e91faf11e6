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

// frameAssembler rebuilds VP8 frames from the RTP packets the relay
// forwards. A frame with a missing packet is dropped and counted.
type frameAssembler struct {
	started bool
	lastSeq uint16
	inFrame bool
	broken  bool // a packet of the current frame is missing
	ts      uint32
	buf     []byte
	depack  codecs.VP8Packet
	start   time.Time     // when the current frame's first packet arrived
	arrival time.Duration // how long the last whole frame took to arrive
}

// push adds a packet that arrived at at; it returns a complete frame when
// pkt ends one, and lost > 0 when frames were lost to a gap in sequence
// numbers.
func (a *frameAssembler) push(pkt *rtp.Packet, at time.Time) (frame []byte, ts uint32, lost int) {
	if a.started && pkt.SequenceNumber != a.lastSeq+1 {
		if a.inFrame {
			a.broken = true
		} else {
			lost++ // a whole frame (or its start) went missing
		}
	}
	a.started, a.lastSeq = true, pkt.SequenceNumber
	payload, err := a.depack.Unmarshal(pkt.Payload)
	if err != nil {
		if a.inFrame {
			a.broken = true
		}
		return nil, 0, lost
	}
	if a.depack.S == 1 && a.depack.PID == 0 {
		if a.inFrame { // the previous frame never ended
			lost++
		}
		a.inFrame, a.broken, a.ts, a.buf, a.start = true, false, pkt.Timestamp, a.buf[:0], at
	}
	if !a.inFrame {
		return nil, 0, lost
	}
	if pkt.Timestamp != a.ts {
		a.broken = true
	}
	a.buf = append(a.buf, payload...)
	if !pkt.Marker {
		return nil, 0, lost
	}
	a.inFrame = false
	if a.broken || len(a.buf) == 0 {
		return nil, 0, lost + 1
	}
	a.arrival = at.Sub(a.start)
	return a.buf, a.ts, lost
}

// isKeyframe reports whether a VP8 frame is a keyframe, and its size.
func isKeyframe(f []byte) (key bool, width, height int) {
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
	startMS       int64 // on the session's timeline
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
	data   []byte
}

func newSegment(dir string, n int, startMS int64, firstTS uint32, width, height int) *segment {
	name := fmt.Sprintf("video-%04d.webm", n)
	return &segment{name: name, path: filepath.Join(dir, name), firstTS: firstTS, startMS: startMS, width: width, height: height}
}

func (s *segment) full() bool { return s.bytes >= maxSegmentBytes }

// add appends a frame; ts is its RTP timestamp.
func (s *segment) add(frame []byte, ts uint32, key bool) {
	ms := int64(ts-s.firstTS) / 90 // VP8 RTP clock is 90 kHz
	if ms < s.lastMS || ms > 1<<40 {
		ms = s.lastMS
	}
	if len(s.clusters) == 0 || key || ms-s.clusters[len(s.clusters)-1].ms > 30000 {
		s.clusters = append(s.clusters, cluster{ms: ms})
	}
	c := &s.clusters[len(s.clusters)-1]
	c.blocks = append(c.blocks, block{offset: int16(ms - c.ms), key: key, data: append([]byte(nil), frame...)})
	s.lastMS = ms
	s.frames++
	s.bytes += len(frame)
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
		n += simpleBlockExtra + len(b.data)
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
		head = appendHeader(head[:0], idSimpleBlock, 4+len(b.data))
		head = append(head, 0x81, byte(uint16(b.offset)>>8), byte(b.offset), flags) // track 1
		if _, err := w.Write(head); err != nil {
			return err
		}
		if _, err := w.Write(b.data); err != nil {
			return err
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
