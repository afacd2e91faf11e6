// Package relay is the broker's media endpoint for one session: it holds a
// PeerConnection with the host and one with each viewer, forwards the
// host's VP8 RTP without transcoding to every viewer the user lets see,
// passes on only the messages each viewer's grants allow, and turns a
// viewer's picture-loss report into one keyframe request to the host.
package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
)

// ErrClosed is returned by a Session that has been closed.
var ErrClosed = errors.New("relay closed")

// Config configures a Session.
type Config struct {
	API    *rtc.API
	Logger *slog.Logger
	// OnHostGone is called once when the host's media connection fails or
	// closes, from a goroutine of the relay.
	OnHostGone func()
	// OnHostSilent is called when the host's media connection goes quiet
	// (true: the user's computer stopped answering, frozen or cut off) and
	// when it answers again (false), from a goroutine of the relay. A still
	// screen sends no video: this is what tells a silent host from one with
	// nothing new to show.
	OnHostSilent func(silent bool)
	// Tap and ShellTap, when set, see what is relayed, for the recording.
	Tap      Tap
	ShellTap ShellTap
	// Now is the clock the viewers' clipboard limits run on; time.Now if
	// nil.
	Now func() time.Time
	// Traffic, when set, counts what the session receives to relay.
	Traffic *Traffic
}

// Session relays one support session's media.
type Session struct {
	cfg Config
	wg  sync.WaitGroup

	mu          sync.Mutex
	host        *webrtc.PeerConnection
	hostSSRC    webrtc.SSRC
	hostControl *webrtc.DataChannel
	hostInput   *webrtc.DataChannel
	displays    []byte // the host's last displays message, for late viewers
	viewers     map[*Viewer]struct{}
	lastKey     time.Time // when the host was last asked for a keyframe
	keyPending  bool      // a request is waiting for keyframeInterval to pass
	limit       int       // the bitrate the host was last told viewers receive
	limitAt     time.Time // and when
	hostRate    rateMeter // of the host's video
	closed      bool
	ending      string // why the session ends, once it does (see End)
	hostGone    sync.Once

	// clipSenders are the viewers whose text went to the user's clipboard
	// and is not answered yet, oldest first: each answer is its sender's.
	// clipFetchers are the same for fetches of the user's clipboard.
	clipSenders  []clipSend
	clipFetchers []clipSend

	// inputMu orders what goes to the host's input channel: nothing while
	// the host is silent, and on its return the release of whatever was
	// held before any new input.
	inputMu    sync.Mutex
	hostSilent bool

	// controlMu makes taking control one step: one viewer at a time is in
	// control of the user's computer (see takeControl).
	controlMu   sync.Mutex
	controlTurn int    // how many times control was taken
	controlBy   string // the name of the viewer that took it last
}

// Viewer is one viewer's PeerConnection with the broker.
type Viewer struct {
	s       *Session
	pc      *webrtc.PeerConnection
	control *webrtc.DataChannel
	input   *webrtc.DataChannel
	opts    ViewerOptions

	video *webrtc.TrackLocalStaticRTP

	bitrate atomic.Int64 // what congestion control says the viewer's link carries, bits/s

	controlling atomic.Bool
	dropped     atomic.Uint64
	clipLimit   *rate.Limiter // the viewer's texts and fetches for the user's clipboard
	mu          sync.Mutex
	lastNotice  time.Time
	grants      map[string]bool // what the user granted this viewer
	paused      bool            // the user paused the session
	ending      bool            // the session ends: nothing more passes (see Session.End)
	cutOff      string          // why the broker cuts the viewer off (see CutOff)
	seen        bool            // video was flowing to this viewer
	seqOffset   uint16          // keeps sequence numbers contiguous across gaps
	lastSeq     uint16
	pipes       map[string]*pipe // files and shell channels, by label
	lateStops   []*lateStop      // transfers stopped, waiting for why
	changed     chan struct{}    // closed when grants or pause change (see whyClosed)

	// What the viewer reports receiving, to tell its keyframe requests
	// that matter from those of a timer (see pictureLost).
	report        rtcp.ReceptionReport // the latest
	reported      bool
	keyframeAsked bool   // a keyframe was asked for this viewer
	lostAtAsk     uint32 // how many packets it had lost by then
	sentSinceAsk  bool   // and video was forwarded to it since
}

// ViewerOptions says what a viewer may do.
type ViewerOptions struct {
	// CanControl allows the viewer to take control (input, clipboard,
	// display choice); without it the viewer only watches.
	CanControl bool
	// Name identifies the viewer in logs.
	Name string
	// ID is the viewer's id in the user's grants; the host checks files
	// and shell channels against that viewer's own grants.
	ID string
	// OnAudit, when set, records file transfers and shells in the
	// session's audit trail.
	OnAudit func(typ string, detail map[string]any)
	// OnRefused is told when the viewer's messages are refused (at most
	// every few seconds, with the running count), for the audit trail.
	OnRefused func(reason string, count uint64)
}

// New returns a relay for one session.
func New(cfg Config) (*Session, error) {
	if cfg.API == nil {
		return nil, errors.New("relay: missing API")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnHostGone == nil {
		cfg.OnHostGone = func() {}
	}
	if cfg.OnHostSilent == nil {
		cfg.OnHostSilent = func(bool) {}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Traffic == nil {
		cfg.Traffic = &Traffic{}
	}
	return &Session{cfg: cfg, viewers: map[*Viewer]struct{}{}}, nil
}

// AcceptHost answers the host's offer. A second call replaces the previous
// host connection (a host that reconnected).
func (s *Session) AcceptHost(offer string) (string, error) {
	pc, err := s.cfg.API.NewPeerConnection(rtc.Sending{})
	if err != nil {
		return "", fmt.Errorf("host peer connection: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			pc.Close()
		}
	}()
	control, input, err := rtc.DataChannels(pc)
	if err != nil {
		return "", err
	}
	control.OnMessage(func(m webrtc.DataChannelMessage) {
		s.cfg.Traffic.ControlFromHosts.Add(uint64(len(m.Data)))
		s.fromHostControl(control, m.Data)
	})
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if track.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		s.mu.Lock()
		s.hostSSRC = track.SSRC()
		s.mu.Unlock()
		s.spawn(func() { s.forward(track) })
		s.RequestKeyframe()
	})
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		s.cfg.Logger.Debug("host media connection", "state", state.String())
		s.mu.Lock()
		current := s.host == pc && !s.closed
		s.mu.Unlock()
		if !current {
			return
		}
		switch state {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			s.hostGone.Do(s.cfg.OnHostGone)
		case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateConnected:
			// Each change comes on a goroutine of its own, maybe after a
			// later one: the state the connection is in now is the news.
			// Input stops before the viewers hear of it, and resumes
			// before they hear the host is back.
			silent := pc.ConnectionState() != webrtc.PeerConnectionStateConnected
			s.setHostSilent(silent)
			s.cfg.OnHostSilent(silent)
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("host offer: %w", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("answer host: %w", err)
	}
	sdp, err := rtc.GatherComplete(pc, answer)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", ErrClosed
	}
	old := s.host
	s.host, s.hostControl, s.hostInput = pc, control, input
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	ok = true
	return sdp, nil
}

// forward copies the host's RTP to every viewer until the track ends.
func (s *Session) forward(track *webrtc.TrackRemote) {
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		// Header extensions were negotiated with the host; their IDs mean
		// nothing to viewers, whose own interceptors add what they need.
		pkt.Header.Extension = false
		pkt.Header.Extensions = nil
		s.tapVideo(pkt)
		size := pkt.MarshalSize()
		s.cfg.Traffic.VideoFromHosts.Add(uint64(size))
		s.mu.Lock()
		s.hostRate.add(size, time.Now())
		viewers := slices.Collect(maps.Keys(s.viewers))
		s.mu.Unlock()
		for _, v := range viewers {
			v.forward(pkt)
		}
	}
}

// AddViewer creates a viewer's PeerConnection and returns it with the
// complete offer to send to the viewer.
func (s *Session) AddViewer(opts ViewerOptions) (*Viewer, string, error) {
	v := &Viewer{s: s, opts: opts, grants: map[string]bool{}, changed: make(chan struct{}),
		clipLimit: rate.NewLimiter(clipRate, clipBurst)}
	// Congestion control starts from what the host sends now, at least
	// viewerStartBitrate, so that a viewer joining a busy session does not
	// hold it back while its estimate grows.
	s.mu.Lock()
	start := max(s.hostRate.rate(time.Now()), viewerStartBitrate)
	s.mu.Unlock()
	pc, err := s.cfg.API.NewPeerConnection(rtc.Sending{StartBitrate: start, OnBitrate: v.setBitrate})
	if err != nil {
		return nil, "", fmt.Errorf("viewer peer connection: %w", err)
	}
	v.pc = pc
	ok := false
	defer func() {
		if !ok {
			pc.Close()
		}
	}()
	// One track per viewer, so that each sees only what the user allows it.
	video, err := webrtc.NewTrackLocalStaticRTP(rtc.VP8, "screen", "tether")
	if err != nil {
		return nil, "", fmt.Errorf("create video track: %w", err)
	}
	sender, err := pc.AddTrack(video)
	if err != nil {
		return nil, "", fmt.Errorf("add video to viewer: %w", err)
	}
	v.video = video
	if v.control, v.input, err = rtc.DataChannels(pc); err != nil {
		return nil, "", err
	}
	v.control.OnOpen(func() {
		s.mu.Lock()
		v.sendDisplaysLocked()
		s.mu.Unlock()
	})
	v.control.OnMessage(func(m webrtc.DataChannelMessage) {
		s.cfg.Traffic.ControlFromViewers.Add(uint64(len(m.Data)))
		v.fromControl(m.Data)
	})
	// Besides the negotiated channels, a viewer may open files and shell
	// channels, if the user granted them; anything else is refused and
	// reported.
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		switch {
		case protocol.FilesChannel(dc.Label()):
			v.openPipe(dc, protocol.PermFiles)
		case protocol.ShellChannel(dc.Label()):
			v.openPipe(dc, protocol.PermShell)
		default:
			v.drop(fmt.Sprintf("The broker refused a %q channel the session has no use for.", dc.Label()))
			dc.OnOpen(func() { dc.Close() })
			dc.OnMessage(func(webrtc.DataChannelMessage) { v.drop("Messages on a refused channel are dropped.") })
		}
	})
	v.input.OnMessage(func(m webrtc.DataChannelMessage) {
		s.cfg.Traffic.ControlFromViewers.Add(uint64(len(m.Data)))
		v.fromInput(m.Data)
	})
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		s.cfg.Logger.Debug("viewer media connection", "state", state.String())
		switch state {
		case webrtc.PeerConnectionStateConnected:
			v.requestKeyframe()
		case webrtc.PeerConnectionStateDisconnected:
			// The technician's link went quiet: let go of what they hold
			// on the user's computer, but keep their control, terminals
			// and transfers for when it comes back (a moment of Wi-Fi).
			v.releaseHeld()
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			v.stopControl()
			v.closePipes(func(string) bool { return false }, viewerLeft)
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, "", fmt.Errorf("offer viewer: %w", err)
	}
	sdp, err := rtc.GatherComplete(pc, offer)
	if err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, "", ErrClosed
	}
	s.viewers[v] = struct{}{}
	s.mu.Unlock()
	s.spawn(func() { s.readViewerRTCP(v, sender) })
	ok = true
	return v, sdp, nil
}

// SetAnswer applies the viewer's answer.
func (v *Viewer) SetAnswer(sdp string) error {
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return fmt.Errorf("viewer answer: %w", err)
	}
	return nil
}

// CutOff says that the broker cuts the viewer off, for reason (an admin
// disabled the account, its login signed out): nothing of the viewer's
// passes from now on, what it held is let go, and a transfer this stops
// half way is in the audit trail with that reason. Close follows.
func (v *Viewer) CutOff(reason string) {
	v.mu.Lock()
	v.cutOff = reason
	v.changedLocked()
	v.mu.Unlock()
	v.stopControl()
	v.closePipes(v.allowed, viewerLeft)
}

// Close ends the viewer's media; whatever it held pressed is released.
func (v *Viewer) Close() error {
	v.stopControl()
	v.closePipes(func(string) bool { return false }, viewerLeft)
	v.s.mu.Lock()
	delete(v.s.viewers, v)
	v.s.mu.Unlock()
	v.s.limitHost()
	return v.pc.Close()
}

func (s *Session) spawn(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// End says that the session ends, for reason: a transfer its end stops
// half way is in the audit trail with that reason. Close follows.
func (s *Session) End(reason string) {
	s.mu.Lock()
	s.ending = reason
	viewers := slices.Collect(maps.Keys(s.viewers))
	s.mu.Unlock()
	for _, v := range viewers {
		v.mu.Lock()
		// Nothing passes from now on: the recording is finished next, and
		// what passed after it would be in no record.
		v.ending = true
		v.changedLocked()
		pipes := slices.Collect(maps.Values(v.pipes))
		late := slices.Clone(v.lateStops)
		v.mu.Unlock()
		// Stopped now, as the trail has it, before the session's end: the
		// channels close once the user's computer has let go. Those it
		// closed already (it stops its transfers as the user ends the
		// session) are recorded now too, not once the broker learns why.
		for _, l := range late {
			l.record(reason)
		}
		for _, p := range pipes {
			p.interrupted(reason)
		}
	}
}

// Close closes every PeerConnection and waits for the relay's goroutines.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	pcs := []*webrtc.PeerConnection{}
	if s.host != nil {
		pcs = append(pcs, s.host)
	}
	for v := range s.viewers {
		pcs = append(pcs, v.pc)
	}
	s.mu.Unlock()
	var errs []error
	for _, pc := range pcs {
		errs = append(errs, pc.Close())
	}
	s.wg.Wait()
	return errors.Join(errs...)
}
