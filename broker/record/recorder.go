// Package record writes each support session's archive from what the
// broker relays: the host's video as WebM segments that start with a
// keyframe, events.jsonl (every audit event, input summaries, clipboard
// transfers) with each line chaining the previous line's hash, one
// asciicast v2 transcript per shell, and manifest.json with the SHA-256 of
// every part, signed with the broker's Ed25519 key. Every few seconds the
// open parts are synced and the manifest re-sealed, so a broker killed
// mid-session leaves an archive that plays and verifies up to its last
// seal. Verify checks an archive offline.
package record

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/reserve"
)

// ErrClosed is returned once a session's recording has finished or failed.
var ErrClosed = errors.New("recording closed")

// Config configures a Recorder.
type Config struct {
	// Dir holds one archive directory per session.
	Dir string
	// Key signs every manifest.
	Key    ed25519.PrivateKey
	Logger *slog.Logger
	Now    func() time.Time
	// SegmentDuration is how long a video segment runs before the next
	// keyframe starts a new one, and how often the archive is sealed
	// (default 4 s).
	SegmentDuration time.Duration
	// QueueSize bounds what waits to be written per session (default 4096
	// items); video beyond it is dropped and counted.
	QueueSize int
	// ShellInput records what technicians type into shells, not only the
	// output (policy; default off: passwords are typed there).
	ShellInput bool
	// EncryptionKey, when set (EncryptionKeySize bytes), encrypts every
	// part at rest.
	EncryptionKey []byte
}

func (c *Config) checkAndSetDefaults() error {
	if c.Dir == "" {
		return errors.New("record: missing Dir")
	}
	if c.Key == nil {
		return errors.New("record: missing Key")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SegmentDuration == 0 {
		c.SegmentDuration = 4 * time.Second
	}
	if c.QueueSize == 0 {
		c.QueueSize = 4096
	}
	if c.EncryptionKey != nil && len(c.EncryptionKey) != EncryptionKeySize {
		return fmt.Errorf("record: encryption key has %d bytes, want %d", len(c.EncryptionKey), EncryptionKeySize)
	}
	return nil
}

// Recorder starts the recording of each session.
type Recorder struct {
	cfg Config
	log *slog.Logger
}

// New returns a Recorder writing under cfg.Dir.
func New(cfg Config) (*Recorder, error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return nil, err
	}
	if err := CheckDir(cfg.Dir); err != nil {
		return nil, err
	}
	return &Recorder{cfg: cfg, log: cfg.Logger.With("component", "record")}, nil
}

// CheckDir creates the recordings directory if need be and makes sure
// files can be made and removed in it. Every session is recorded, and one
// that cannot be recorded does not start: a read-only mount or a directory
// of another owner must stop the broker at start, not the first user who
// has read out a code.
func CheckDir(dir string) error {
	_, missing := os.Stat(dir)
	err := os.MkdirAll(dir, 0o700)
	if err == nil && errors.Is(missing, os.ErrNotExist) {
		// Made on a first start: its own entry must outlast a power cut,
		// or every archive made in it is lost with it.
		err = syncDir(filepath.Dir(dir))
	}
	if err == nil {
		err = reserve.Writable(dir)
	}
	if err != nil {
		return fmt.Errorf("session recordings cannot be written in %s, and no session can start while it cannot be recorded: make the directory writable for the user the broker runs as, or give another -recordings (%w)", dir, err)
	}
	return nil
}

// PublicKey is the key auditors verify archives with.
func (r *Recorder) PublicKey() ed25519.PublicKey { return r.cfg.Key.Public().(ed25519.PublicKey) }

// Dir is where archives are written.
func (r *Recorder) Dir() string { return r.cfg.Dir }

// OpenPart opens the sealed content of a part of a session's archive,
// decrypted if need be (see OpenPart).
func (r *Recorder) OpenPart(session string, m *Manifest, name string) (io.ReadSeekCloser, error) {
	dir, err := r.ArchiveDir(session)
	if err != nil {
		return nil, err
	}
	return OpenPart(dir, m, name, r.cfg.EncryptionKey)
}

// Verify checks a session's archive against this broker's keys. The broker
// never writes a decrypted copy into its own recordings, so a
// decrypted.json found there is not trusted: the parts are checked against
// the signed manifest only. sealed is the SHA-256 of the manifest the
// recording finished with, as the broker stored it ("" if none yet).
func (r *Recorder) Verify(session, sealed string) (*Report, error) {
	dir, err := r.ArchiveDir(session)
	if err != nil {
		return nil, err
	}
	rep, err := verifyArchive(dir, r.PublicKey(), r.cfg.EncryptionKey, false)
	if err != nil {
		// The error goes to API clients without the path; the log keeps it.
		r.log.Error("verify archive", "session", session, "dir", dir, "err", err)
	}
	// The signature holds for any session's archive: one renamed or
	// copied over another's is intact, and must still not pass for it.
	if err == nil && rep.Session != "" && rep.Session != session {
		rep.problem(ManifestFile, "is the manifest of session %s, not of %s: the archive was moved here from another session's", rep.Session, session)
	}
	// So does an earlier seal of its own, put back with the parts cut to
	// what it covers: signed, and short of the session's end.
	if err == nil && sealed != "" && rep.ManifestRaw != nil && sha256Hex(rep.ManifestRaw) != sealed {
		rep.problem(ManifestFile, "is not the manifest the broker sealed when the recording finished (SHA-256 %s): an earlier seal or another archive was put in its place", sealed)
	}
	return rep, err
}

var sessionIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// channelPattern is what a shell's channel id may look like: the relay's
// "<label>.<viewer id>", e.g. shell-1.v_Xq3f9a2b1c0d.
var channelPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64})?$`)

// ArchiveDir returns the archive directory of a session id, refusing ids
// that could name anything else.
func (r *Recorder) ArchiveDir(session string) (string, error) {
	if !sessionIDPattern.MatchString(session) {
		return "", fmt.Errorf("invalid session id %q", session)
	}
	return filepath.Join(r.cfg.Dir, session), nil
}

// Info describes the session being recorded.
type Info struct {
	Session    string
	Ticket     string
	Technician string
	// RequestKeyframe asks the host for a keyframe (a new segment must
	// start with one).
	RequestKeyframe func()
	// ViewerBitrate, when set, is what the narrowest viewer's link
	// carries, bits/s, or 0 when nothing limits them.
	ViewerBitrate func() int
	// OnFailure is called once, from the recording's goroutine, when the
	// archive cannot be written; the session must end.
	OnFailure func(error)
	// OnSealed is called once the archive is finished, with its manifest:
	// complete, or failed with why (even when the failure could not be
	// sealed, the disk full).
	OnSealed func(*Manifest)
}

// Session records one support session. Its methods are safe for
// concurrent use and never block on the disk: the writing happens on the
// session's own goroutine, behind a bounded queue.
type Session struct {
	r     *Recorder
	info  Info
	dir   string
	start time.Time
	queue chan item
	done  chan struct{}
	stop  chan string // the end reason
	once  sync.Once

	// feed orders video against Finish: a packet relayed once the end is
	// under way is not the recording's, neither counted nor queued.
	feed     sync.Mutex
	stopping bool
	markers  [16]uint16 // sequence numbers of the latest frame ends relayed, under feed
	nmarkers int

	videoRelayed  atomic.Int64
	videoOverflow atomic.Int64
	inputsLost    atomic.Int64
	eventsLost    atomic.Int64

	// Owned by the writing goroutine.
	events   *eventLog
	seg      *segment
	segN     int
	parts    []Part // sealed video segments
	asm      frameAssembler
	broken   bool // a frame was lost: what follows waits for a keyframe
	stats    VideoStats
	startTS  uint32
	tsKnown  bool
	lastKeyQ time.Time
	shells   map[string]*shell
	inputs   map[string]*inputSummary
	failed   error
	manifest Manifest
	counts   map[string]int64
	lastT    int64 // events' monotonic time never goes back
	// gapEvents and gapInputs are the losses the last recording.gap told.
	gapEvents, gapInputs int64
	unsealed             bool // events or transcripts were written since the last seal
}

type shell struct {
	part Part
	cast *castWriter
}

type itemKind int

const (
	itemVideo itemKind = iota
	itemEvent
	itemInput
	itemShellOpen
	itemShellData
	itemShellResize
	itemShellClose
)

type item struct {
	kind     itemKind
	at       time.Time
	pkt      *rtp.Packet
	event    Event
	viewer   string
	input    byte
	channel  string
	fromHost bool
	data     []byte
	cols     int
	rows     int
}

// Start creates the session's archive and starts writing it. It fails
// when the archive cannot be created: recording is required.
func (r *Recorder) Start(info Info) (*Session, error) {
	dir, err := r.ArchiveDir(info.Session)
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("an archive for session %s already exists", info.Session)
		}
		return nil, fmt.Errorf("create archive: %w", err)
	}
	// The archive's own entries are synced as it is sealed; its entry in
	// the recordings directory is synced here, once.
	if err := syncDir(r.cfg.Dir); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("create archive: %w", err)
	}
	if info.RequestKeyframe == nil {
		info.RequestKeyframe = func() {}
	}
	if info.OnFailure == nil {
		info.OnFailure = func(error) {}
	}
	s := &Session{
		r: r, info: info, dir: dir, start: r.cfg.Now(),
		queue:  make(chan item, r.cfg.QueueSize),
		done:   make(chan struct{}),
		stop:   make(chan string, 1),
		shells: map[string]*shell{},
		inputs: map[string]*inputSummary{},
		counts: map[string]int64{},
	}
	s.manifest = Manifest{Format: Format, Session: info.Session, Ticket: info.Ticket, Technician: info.Technician, StartedAt: s.start.UTC(), State: StateRecording,
		Encrypted: r.cfg.EncryptionKey != nil}
	if s.events, err = createEventLog(filepath.Join(dir, EventsFile), info.Session, r.cfg.EncryptionKey); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	detail, _ := json.Marshal(map[string]any{"ticket": info.Ticket, "technician": info.Technician})
	if err := s.appendEvent(s.start, Event{Type: "recording.started", Actor: "broker", Detail: detail}); err != nil {
		s.events.close()
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.seal(); err != nil {
		s.events.close()
		os.RemoveAll(dir)
		return nil, err
	}
	go s.run()
	return s, nil
}

// Dir is the archive's directory.
func (s *Session) Dir() string { return s.dir }

// Err is the error that stopped the recording, if any. Call after Finish.
func (s *Session) Err() error {
	<-s.done
	return s.failed
}

// Event copies an audit event into events.jsonl. detail is a JSON object.
func (s *Session) Event(typ, actor string, detail []byte) {
	s.EventAt(s.r.cfg.Now(), typ, actor, detail)
}

// EventAt copies an event that happened at a given time, such as those of
// the trail from before the recording started.
func (s *Session) EventAt(at time.Time, typ, actor string, detail []byte) {
	if !json.Valid(detail) {
		detail = nil
	}
	it := item{kind: itemEvent, at: at, event: Event{Type: typ, Actor: actor, Detail: append(json.RawMessage(nil), detail...)}}
	s.enqueue(it, true)
}

// VideoPacket receives the host's video as the relay forwards it.
func (s *Session) VideoPacket(pkt *rtp.Packet) {
	s.feed.Lock()
	defer s.feed.Unlock()
	if s.stopping {
		return
	}
	s.videoRelayedPacket(pkt)
	cp := &rtp.Packet{Header: pkt.Header, Payload: append([]byte(nil), pkt.Payload...)}
	cp.Header.CSRC, cp.Header.Extensions = nil, nil
	if !s.enqueue(item{kind: itemVideo, at: s.r.cfg.Now(), pkt: cp}, false) {
		s.videoOverflow.Add(1)
	}
}

// videoRelayedPacket counts a frame at the packet that ends it; one resent
// after a loss (the same packet again) is not another frame.
func (s *Session) videoRelayedPacket(pkt *rtp.Packet) {
	if !pkt.Marker {
		return
	}
	for _, seq := range s.markers[:min(s.nmarkers, len(s.markers))] {
		if seq == pkt.SequenceNumber {
			return
		}
	}
	s.markers[s.nmarkers%len(s.markers)] = pkt.SequenceNumber
	s.nmarkers++
	s.videoRelayed.Add(1)
}

// Input counts a viewer's input event for the per-second summaries; the
// content of keys and text is not recorded.
func (s *Session) Input(viewer string, kind byte) {
	if !s.enqueue(item{kind: itemInput, at: s.r.cfg.Now(), viewer: viewer, input: kind}, false) {
		s.inputsLost.Add(1)
	}
}

// Control records a control message the relay passed on: clipboard
// transfers by size (not their content, nor a hash of it: a copied
// password could be found from its hash), display switches, and control
// taken or released.
func (s *Session) Control(viewer string, fromHost bool, m protocol.ControlMessage) {
	var typ string
	detail := map[string]any{"viewer": viewer}
	switch m.Type {
	case protocol.ControlClipboard:
		typ = "clipboard"
		detail["size"] = len(m.Text)
		detail["direction"] = map[bool]string{true: "from_host", false: "to_host"}[fromHost]
	case protocol.ControlDisplaySelect:
		typ, detail["display"] = "display.selected", m.Index
	case protocol.ControlMode:
		typ = map[bool]string{true: "control.taken", false: "control.released"}[m.Enabled]
	default:
		return
	}
	actor := viewer
	if fromHost {
		actor = "user"
	}
	data, _ := json.Marshal(detail)
	s.enqueue(item{kind: itemEvent, at: s.r.cfg.Now(), event: Event{Type: typ, Actor: actor, Detail: data}}, true)
}

// ShellOpened starts a shell's transcript.
func (s *Session) ShellOpened(channel string, viewerID string, cols, rows int) {
	s.enqueue(item{kind: itemShellOpen, at: s.r.cfg.Now(), channel: channel, viewer: viewerID, cols: cols, rows: rows}, true)
}

// ShellData records terminal bytes: output from the host, and input when
// policy says so.
func (s *Session) ShellData(channel string, fromHost bool, data []byte) {
	if !fromHost && !s.r.cfg.ShellInput {
		return
	}
	s.enqueue(item{kind: itemShellData, at: s.r.cfg.Now(), channel: channel, fromHost: fromHost, data: append([]byte(nil), data...)}, true)
}

// ShellResized records a terminal resize.
func (s *Session) ShellResized(channel string, cols, rows int) {
	s.enqueue(item{kind: itemShellResize, at: s.r.cfg.Now(), channel: channel, cols: cols, rows: rows}, true)
}

// ShellClosed ends a shell's transcript.
func (s *Session) ShellClosed(channel string) {
	s.enqueue(item{kind: itemShellClose, at: s.r.cfg.Now(), channel: channel}, true)
}

// enqueue hands an item to the writer and reports whether it was taken.
// Without wait (video, input counts) a full queue drops the item; events
// wait for room, for at most a second, and are counted when lost.
func (s *Session) enqueue(it item, wait bool) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	select {
	case s.queue <- it:
		return true
	default:
	}
	if !wait {
		return false
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case s.queue <- it:
		return true
	case <-s.done:
	case <-t.C:
		s.eventsLost.Add(1)
	}
	return false
}

// Finish writes what is queued, seals the archive as complete and waits
// for it. reason is why the session ended.
func (s *Session) Finish(reason string) error {
	s.once.Do(func() {
		s.feed.Lock()
		s.stopping = true
		s.feed.Unlock()
		s.stop <- reason
	})
	<-s.done
	return s.failed
}

func (s *Session) run() {
	defer close(s.done)
	tick := time.NewTicker(s.r.cfg.SegmentDuration)
	defer tick.Stop()
	second := time.NewTicker(time.Second)
	defer second.Stop()
	for {
		select {
		case it := <-s.queue:
			s.handle(it)
		case <-second.C:
			s.flushInputs(false)
			s.markGap(s.r.cfg.Now())
			// A frame given up now, on a still screen, still gets its
			// keyframe asked for and the frames behind it written.
			if s.failed == nil {
				now := s.r.cfg.Now()
				if err := s.writeFrames(now, false); err != nil {
					s.fail(err)
				} else if err := s.sealIfStill(now); err != nil {
					s.fail(err)
				}
			}
		case <-tick.C:
			s.checkpoint()
		case reason := <-s.stop:
			for {
				select {
				case it := <-s.queue:
					s.handle(it)
					continue
				default:
				}
				break
			}
			s.finish(reason)
			return
		}
	}
}

// markGap writes a recording.gap event when events, terminal output or
// input summaries were lost since the last one: the timeline shows where
// something is missing, and how much.
func (s *Session) markGap(at time.Time) {
	events, inputs := s.eventsLost.Load(), s.inputsLost.Load()
	if s.failed != nil || events == s.gapEvents && inputs == s.gapInputs {
		return
	}
	detail, _ := json.Marshal(map[string]int64{"events_lost": events - s.gapEvents, "input_counts_lost": inputs - s.gapInputs})
	if err := s.appendEvent(at, Event{Type: "recording.gap", Actor: "broker", Detail: detail}); err != nil {
		s.fail(err)
		return
	}
	s.gapEvents, s.gapInputs = events, inputs
}

// fail stops the recording after a write error and reports it once.
func (s *Session) fail(err error) {
	if s.failed != nil {
		return
	}
	s.failed = err
	s.r.log.Error("recording failed", "session", s.info.Session, "dir", s.dir, "err", err)
	// The note is shown to supervisors: it says what failed, not where the
	// server keeps its files (the log above does).
	s.manifest.State, s.manifest.Note = StateFailed, "Writing the archive failed: "+withoutPath(err).Error()
	// Seal what was written, if the disk still lets us. A full disk
	// often does not: the video written since the last seal, which no
	// signature covers and the player does not play, gives back its
	// room for the archive to say that it failed, and why; left saying
	// it is still being recorded, retention would not delete it either.
	if s.seal() != nil && s.dropUnsealedVideo() {
		s.seal()
	}
	// Off the writer: the callback may write to the archive's queue.
	go s.info.OnFailure(err)
}

func (s *Session) handle(it item) {
	if s.failed != nil {
		return
	}
	if it.kind != itemVideo && it.kind != itemInput {
		s.unsealed = true
	}
	var err error
	switch it.kind {
	case itemVideo:
		err = s.video(it.pkt, it.at)
	case itemEvent:
		err = s.appendEvent(it.at, it.event)
	case itemInput:
		s.countInput(it.at, it.viewer, it.input)
	case itemShellOpen:
		err = s.openShell(it)
	case itemShellData:
		if sh := s.shells[it.channel]; sh != nil && !sh.cast.closed {
			err = sh.cast.data(it.at, it.fromHost, it.data)
		}
	case itemShellResize:
		if sh := s.shells[it.channel]; sh != nil && !sh.cast.closed {
			err = sh.cast.resize(it.at, it.cols, it.rows)
		}
	case itemShellClose:
		if sh := s.shells[it.channel]; sh != nil && !sh.cast.closed {
			err = sh.cast.close(it.at)
			sh.part.Open = false
		}
	}
	if err != nil {
		s.fail(err)
	}
}

func (s *Session) appendEvent(at time.Time, e Event) error {
	e.At, e.T = at.UTC(), max(s.lastT, at.Sub(s.start).Milliseconds())
	if err := s.events.append(e); err != nil {
		return err
	}
	s.lastT = e.T
	s.counts[e.Type]++
	s.unsealed = true
	return nil
}

func (s *Session) openShell(it item) error {
	if old := s.shells[it.channel]; old != nil && !old.cast.closed {
		old.cast.close(it.at)
	}
	n := 1
	for _, sh := range s.shells {
		if sh.part.Channel == it.channel {
			n++
		}
	}
	name := fmt.Sprintf("%s.cast", it.channel)
	if n > 1 {
		name = fmt.Sprintf("%s.%d.cast", it.channel, n)
	}
	if !safeName(name) || !channelPattern.MatchString(it.channel) {
		return s.appendEvent(it.at, Event{Type: "shell.unrecorded", Actor: "broker", Detail: json.RawMessage(`{"reason":"bad channel name"}`)})
	}
	c, err := createCast(filepath.Join(s.dir, name), it.at, it.cols, it.rows, s.info.Session+" "+it.channel, s.r.cfg.EncryptionKey)
	if err != nil {
		return err
	}
	key := it.channel
	if n > 1 {
		s.shells[fmt.Sprintf("%s#%d", it.channel, n-1)] = s.shells[key]
	}
	s.shells[key] = &shell{part: Part{Name: name, Kind: KindShell, Channel: it.channel, Viewer: it.viewer, Open: true, StartMS: it.at.Sub(s.start).Milliseconds()}, cast: c}
	return nil
}

// video assembles frames and writes them into segments that each start
// with a keyframe; at is when pkt arrived.
func (s *Session) video(pkt *rtp.Packet, at time.Time) error {
	s.asm.push(pkt, at)
	return s.writeFrames(at, false)
}

// writeFrames writes the frames that are whole at now; with giveUp, also
// those that wait behind a frame still missing a packet.
func (s *Session) writeFrames(now time.Time, giveUp bool) error {
	for {
		frame, ts, at, lost := s.asm.next(now, giveUp)
		s.stats.Lost += int64(lost)
		if lost > 0 {
			s.broken = true
			if !giveUp {
				s.requestKeyframe()
			}
		}
		if frame == nil {
			return nil
		}
		if err := s.writeFrame(frame, ts, at); err != nil {
			return err
		}
	}
}

// writeFrame adds a frame whose last packet arrived at at to the segment,
// starting a new one at a keyframe when it is due.
func (s *Session) writeFrame(frame frameData, ts uint32, at time.Time) error {
	if !s.tsKnown {
		s.startTS, s.tsKnown = ts, true
	}
	key, w, h := isKeyframe(frame)
	// A delta frame describes its change from the frame before: after a
	// lost one it would play as a picture that was never on the screen.
	if s.broken && !key {
		s.stats.AfterLoss++
		s.requestKeyframe()
		return nil
	}
	s.broken = false
	if s.seg != nil {
		// A segment runs SegmentDuration, or longer on a link so narrow
		// that its keyframe took more than a tenth of that to arrive or to
		// go out to a viewer: the keyframes that start segments take at
		// most a tenth of any link. On a 500 kbit/s link a keyframe takes
		// two seconds, and one every 4 s left the screen half its frames.
		due := int64(ts-s.seg.firstTS)/90 >= s.segmentLength().Milliseconds()
		if key && (due || s.seg.full() || w != s.seg.width || h != s.seg.height) {
			if err := s.sealSegment(); err != nil {
				return err
			}
		} else if due {
			s.requestKeyframe()
		}
	}
	if s.seg == nil {
		if !key {
			s.stats.BeforeKey++
			s.requestKeyframe()
			return nil
		}
		s.segN++
		s.seg = newSegment(s.dir, s.segN, ts, w, h)
		s.seg.keyTime = s.keyTime(frame.size())
	}
	if s.seg.full() {
		s.stats.QueueOverflow++
		s.requestKeyframe()
		return nil
	}
	s.seg.add(frame, ts, key, at.Sub(s.start).Milliseconds())
	s.stats.Written++
	return nil
}

// sealIfStill seals the segment under way once it has run its length and
// the screen has not changed for a second: the last change must not wait
// in memory for the next one, which may be long in coming, and be lost
// with the broker. The next change starts a segment at the keyframe it
// would have asked for anyway, the segment being due.
func (s *Session) sealIfStill(now time.Time) error {
	if s.seg == nil {
		return nil
	}
	at := now.Sub(s.start).Milliseconds()
	if at-s.seg.startMS < s.segmentLength().Milliseconds() || at-(s.seg.startMS+s.seg.lastMS) < time.Second.Milliseconds() {
		return nil
	}
	return s.sealSegment()
}

// keyTime is how long a keyframe of n bytes takes to reach everyone: to
// arrive here from the host, and to go out on the narrowest viewer's link.
func (s *Session) keyTime(n int) time.Duration {
	d := s.asm.arrival
	if s.info.ViewerBitrate != nil {
		if bps := s.info.ViewerBitrate(); bps > 0 {
			d = max(d, time.Duration(float64(n*8)/float64(bps)*float64(time.Second)))
		}
	}
	return d
}

// segmentLength is how long the segment under way runs: SegmentDuration,
// or longer on a link so narrow that its keyframe took more than a tenth
// of that to arrive or to go out to a viewer (see writeFrame).
func (s *Session) segmentLength() time.Duration {
	return max(s.r.cfg.SegmentDuration, keyframeShare*s.seg.keyTime)
}

// keyframeShare bounds a segment's length below: this many times as long
// as its keyframe took to arrive.
const keyframeShare = 10

func (s *Session) requestKeyframe() {
	now := s.r.cfg.Now()
	if now.Sub(s.lastKeyQ) < 500*time.Millisecond {
		return
	}
	s.lastKeyQ = now
	s.info.RequestKeyframe()
}

// sealSegment closes the current segment and seals the archive with it:
// the seal syncs the archive's directory, so the segment's entry is on
// disk before the manifest that lists it (see writeManifest).
func (s *Session) sealSegment() error {
	part, err := s.seg.seal(s.r.cfg.EncryptionKey)
	s.seg = nil
	if err != nil {
		return err
	}
	s.parts = append(s.parts, part)
	return s.seal()
}

// checkpoint seals the archive as it stands, so that a crash loses at
// most the last few seconds. While only video comes, each segment seals
// the archive when it is written, and there is nothing more to seal.
func (s *Session) checkpoint() {
	if s.failed != nil || !s.unsealed {
		return
	}
	if err := s.seal(); err != nil {
		s.fail(err)
	}
}

// seal syncs the open parts and writes a signed manifest covering what is
// written so far.
func (s *Session) seal() error {
	if err := s.events.sync(); err != nil {
		return fmt.Errorf("sync event log: %w", err)
	}
	m := s.manifest
	m.SealedAt = s.r.cfg.Now().UTC()
	m.Parts = append([]Part(nil), s.parts...)
	m.Parts = append(m.Parts, s.events.part())
	for _, sh := range s.sortedShells() {
		if !sh.cast.closed {
			if err := sh.cast.f.Sync(); err != nil {
				return fmt.Errorf("sync shell transcript: %w", err)
			}
		}
		p := sh.part
		p.Size, p.SHA256 = sh.cast.sealed()
		m.Parts = append(m.Parts, p)
	}
	m.Video = s.videoStats()
	m.Counts = s.counts
	m.EventsLost, m.InputCountsLost = s.eventsLost.Load(), s.inputsLost.Load()
	if err := writeManifest(s.dir, &m, s.r.cfg.Key); err != nil {
		return err
	}
	s.unsealed = false
	return nil
}

// dropUnsealedVideo removes the video segments that the manifest on disk
// does not list, and reports whether there were any.
func (s *Session) dropUnsealedVideo() bool {
	m, _, err := ReadManifest(s.dir)
	if err != nil {
		return false
	}
	sealed := map[string]bool{}
	for _, p := range m.Parts {
		sealed[p.Name] = true
	}
	var kept []Part
	for _, p := range s.parts {
		if sealed[p.Name] {
			kept = append(kept, p)
		} else if err := os.Remove(filepath.Join(s.dir, p.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false
		}
	}
	dropped := len(kept) < len(s.parts)
	s.parts = kept
	return dropped
}

func (s *Session) sortedShells() []*shell {
	out := make([]*shell, 0, len(s.shells))
	for _, sh := range s.shells {
		out = append(out, sh)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].part.Name < out[j].part.Name })
	return out
}

func (s *Session) videoStats() VideoStats {
	st := s.stats
	st.Relayed = s.videoRelayed.Load()
	st.QueueOverflow += s.videoOverflow.Load()
	return st
}

func (s *Session) finish(reason string) {
	defer s.events.close()
	defer s.finished()
	if s.failed != nil {
		for _, sh := range s.shells {
			sh.cast.release()
		}
		return
	}
	now := s.r.cfg.Now()
	s.flushInputs(true)
	s.markGap(now)
	// Frames waiting behind one still missing a packet are written.
	err := s.writeFrames(now, true)
	if s.seg != nil {
		part, serr := s.seg.seal(s.r.cfg.EncryptionKey)
		s.seg = nil
		if serr == nil {
			s.parts = append(s.parts, part)
		} else if err == nil {
			err = serr
		}
	}
	for _, sh := range s.sortedShells() {
		if cerr := sh.cast.close(now); cerr != nil && err == nil {
			err = cerr
		}
		sh.part.Open = false
	}
	stats := s.videoStats()
	detail, _ := json.Marshal(map[string]any{"reason": reason, "frames_relayed": stats.Relayed, "frames_written": stats.Written,
		"events_lost": s.eventsLost.Load(), "input_counts_lost": s.inputsLost.Load()})
	if err == nil {
		err = s.appendEvent(now, Event{Type: "recording.finished", Actor: "broker", Detail: detail})
	}
	if err != nil {
		s.fail(err)
		return
	}
	s.manifest.State, s.manifest.EndedAt, s.manifest.Note = StateComplete, now.UTC(), reason
	if err := s.seal(); err != nil {
		s.fail(fmt.Errorf("final seal: %w", err))
	}
}

// finished tells OnSealed how the archive ended. A failure that could not
// be sealed leaves the last seal's manifest on disk, still recording: what
// is reported is what that seal holds, in the state the archive ended in.
func (s *Session) finished() {
	if s.info.OnSealed == nil {
		return
	}
	m, _, err := ReadManifest(s.dir)
	if err != nil {
		s.r.log.Error("read the finished archive's manifest", "session", s.info.Session, "err", err)
		return
	}
	m.State, m.Note, m.EndedAt = s.manifest.State, s.manifest.Note, s.manifest.EndedAt
	s.info.OnSealed(m)
}
