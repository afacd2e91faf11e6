package record

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
}

// push adds a packet; it returns a complete frame when pkt ends one, and
// lost > 0 when frames were lost to a gap in sequence numbers.
func (a *frameAssembler) push(pkt *rtp.Packet) (frame []byte, ts uint32, lost int) {
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
		a.inFrame, a.broken, a.ts, a.buf = true, false, pkt.Timestamp, a.buf[:0]
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
	width, height int
	clusters      []webm.Cluster
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
	// A cluster per keyframe, and block timecodes are 16-bit offsets.
	if len(s.clusters) == 0 || key || ms-int64(s.clusters[len(s.clusters)-1].Timecode) > 30000 {
		s.clusters = append(s.clusters, webm.Cluster{Timecode: uint64(ms)})
	}
	c := &s.clusters[len(s.clusters)-1]
	c.SimpleBlock = append(c.SimpleBlock, ebml.Block{TrackNumber: 1, Timecode: int16(ms - int64(c.Timecode)), Keyframe: key, Data: [][]byte{append([]byte(nil), frame...)}})
	s.lastMS = ms
	s.frames++
	s.bytes += len(frame)
}

type webmFile struct {
	Header  webm.EBMLHeader `ebml:"EBML"`
	Segment webm.Segment    `ebml:"Segment"`
}

// seal writes the segment as a WebM file, fsyncs it and returns it as a
// manifest part.
func (s *segment) seal(key []byte) (Part, error) {
	// The last frame lasts until the next would have come (~1/30 s).
	duration := s.lastMS + 33
	doc := webmFile{
		Header: *webm.DefaultEBMLHeader,
		Segment: webm.Segment{
			Info: webm.Info{TimecodeScale: 1000000, MuxingApp: "tether", WritingApp: "tether broker", Duration: float64(duration)},
			Tracks: webm.Tracks{TrackEntry: []webm.TrackEntry{{
				Name: "screen", TrackNumber: 1, TrackUID: 1, CodecID: "V_VP8", TrackType: 1,
				Video: &webm.Video{PixelWidth: uint64(s.width), PixelHeight: uint64(s.height)},
			}}},
			Cluster: s.clusters,
		},
	}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return Part{}, fmt.Errorf("create video segment: %w", err)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 256<<10)
	if key == nil {
		err = ebml.Marshal(&doc, bw)
	} else {
		var plain bytes.Buffer
		enc, cerr := newPartCipher(key, s.name)
		if err = cerr; err == nil {
			if err = ebml.Marshal(&doc, &plain); err == nil {
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
