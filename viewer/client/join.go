package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"golang.org/x/image/vp8"

	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
)

// ErrEnded is returned once the session is over.
var ErrEnded = errors.New("session ended")

// ErrDisconnected is returned once this connection is over while the
// session may go on: the broker cut it off (a revoked key, a sign-out), or
// the connection to the broker was lost.
var ErrDisconnected = errors.New("disconnected")

// sessionEndedClose is the close reason a broker gives when the session
// itself ended. Only brokers that do not yet say so in their ended
// message (its Scope) are read by it.
const sessionEndedClose = "session ended"

// Joined is a live connection to one session.
type Joined struct {
	ID  string
	sig *dial.Conn
	api *rtc.API
	pc  *webrtc.PeerConnection
	wg  sync.WaitGroup

	log *slog.Logger

	mu        sync.Mutex
	state     string
	host      *protocol.HostInfo
	endReason string
	cutOff    bool      // the connection ended, not the session
	keyframe  []byte    // the latest complete keyframe
	keyAt     time.Time // when it arrived
	changed   chan struct{}
	done      chan struct{}

	frames    atomic.Uint64
	keyframes atomic.Uint64
	videoSSRC atomic.Uint32
	firSeq    atomic.Uint32 // sequence number of our full intra requests

	control     *webrtc.DataChannel
	input       *webrtc.DataChannel
	perms       *protocol.Permissions              // the latest word on what the user allows
	permsSeen   int                                // how many such words came
	hadGrant    map[string]bool                    // what the user allowed at some point
	refusal     error                              // the broker's latest error message
	observers   []protocol.Person                  // supervisors watching read-only
	lastControl map[string]protocol.ControlMessage // the latest message of each type
}

// Join connects to session id and starts receiving its video.
func (c *Client) Join(ctx context.Context, id string) (*Joined, error) {
	sig, err := c.dial(ctx, "/ws/viewer")
	if err != nil {
		return nil, err
	}
	sig.KeepAlive(dial.PingEvery, dial.BrokerSilence)
	j := &Joined{ID: id, sig: sig, log: c.cfg.Logger.With("session", id), changed: make(chan struct{}), done: make(chan struct{}), lastControl: map[string]protocol.ControlMessage{}}
	ok := false
	defer func() {
		if !ok {
			j.Close()
		}
	}()
	if err := sig.Send(protocol.TypeHello, id, protocol.Hello{Version: protocol.Version, Role: protocol.RoleViewer, Session: id}); err != nil {
		return nil, fmt.Errorf("join %s: %w", id, err)
	}
	env, err := sig.Read()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, fmt.Errorf("join %s: %w: The connection to the broker was lost.", id, ErrDisconnected)
	}
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", id, err)
	}
	if env.Type == protocol.TypeError {
		return nil, fmt.Errorf("join %s: %w", id, dial.AsRemoteError(env))
	}
	var welcome protocol.Welcome
	if env.Type != protocol.TypeWelcome || protocol.DecodePayload(env, &welcome) != nil {
		return nil, fmt.Errorf("join %s: expected welcome, got %q", id, env.Type)
	}
	j.state = welcome.State

	if j.api, err = rtc.NewAPI(rtc.Config{}); err != nil {
		return nil, err
	}
	if j.pc, err = j.api.NewPeerConnection(rtc.Sending{}); err != nil {
		return nil, fmt.Errorf("create peer connection: %w", err)
	}
	if j.control, j.input, err = rtc.DataChannels(j.pc); err != nil {
		return nil, err
	}
	j.control.OnMessage(func(m webrtc.DataChannelMessage) { j.fromControl(m.Data) })
	for _, dc := range []*webrtc.DataChannel{j.control, j.input} {
		dc.OnOpen(func() { j.log.Debug("channel open", "channel", dc.Label()) })
	}
	// A broker that stops answering (frozen, or the network gone) leaves
	// the signaling connection open but silent: the media connection
	// failing is one way the client learns, after as long as the host
	// waits; signaling's own keepalive is the other.
	j.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		j.log.Debug("media connection", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			go func() {
				// When the session ends, the broker closes the media
				// connection too: its word on why comes on signaling, a
				// moment later.
				select {
				case <-j.done:
					return
				case <-time.After(2 * time.Second):
				}
				j.finish("The connection to the broker was lost.", true)
				j.sig.Close() // ends signaling, which waits on a silent broker
			}()
		}
	})
	j.pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		j.videoSSRC.Store(uint32(track.SSRC()))
		j.wg.Add(1)
		go func() {
			defer j.wg.Done()
			j.receive(track)
		}()
	})
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		j.signaling()
	}()
	ok = true
	return j, nil
}

// signaling answers the broker's offer and follows state changes.
func (j *Joined) signaling() {
	var ended *protocol.Ended
	for {
		env, err := j.sig.Read()
		if err != nil {
			j.signalingClosed(ended, err)
			return
		}
		switch env.Type {
		case protocol.TypeOffer:
			if err := j.answer(env); err != nil {
				// Without media the connection is of no use; it would
				// otherwise wait for ever.
				j.log.Warn("offer refused", "err", err)
				j.finish("The connection to the session could not be set up: "+err.Error()+".", true)
				j.sig.Close()
				return
			}
		case protocol.TypeState:
			var st protocol.State
			if protocol.DecodePayload(env, &st) == nil {
				j.mu.Lock()
				j.state, j.host = st.State, st.Host
				j.notifyLocked()
				j.mu.Unlock()
			}
		case protocol.TypePermissions:
			var p protocol.Permissions
			if protocol.DecodePayload(env, &p) == nil {
				j.mu.Lock()
				j.perms = &p
				j.permsSeen++
				if j.hadGrant == nil {
					j.hadGrant = map[string]bool{}
				}
				for _, g := range p.Granted {
					j.hadGrant[g] = true
				}
				j.notifyLocked()
				j.mu.Unlock()
			}
		case protocol.TypeObservers:
			var o protocol.Observers
			if protocol.DecodePayload(env, &o) == nil {
				j.mu.Lock()
				j.observers = o.Observers
				j.notifyLocked()
				j.mu.Unlock()
			}
		case protocol.TypeError:
			j.mu.Lock()
			j.refusal = dial.AsRemoteError(env)
			j.notifyLocked()
			j.mu.Unlock()
		case protocol.TypeEnded:
			// The connection closes next; it is over once it has.
			ended = &protocol.Ended{}
			protocol.DecodePayload(env, ended)
		}
	}
}

// answer answers the broker's offer in env.
func (j *Joined) answer(env protocol.Envelope) error {
	var offer protocol.SDP
	if err := protocol.DecodePayload(env, &offer); err != nil {
		return fmt.Errorf("the broker's offer: %w", err)
	}
	if err := j.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer.SDP}); err != nil {
		return fmt.Errorf("the broker's offer: %w", err)
	}
	answer, err := j.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("answer the broker's offer: %w", err)
	}
	sdp, err := rtc.GatherComplete(j.pc, answer)
	if err != nil {
		return fmt.Errorf("answer the broker's offer: %w", err)
	}
	if err := j.sig.Send(protocol.TypeAnswer, j.ID, protocol.SDP{SDP: sdp}); err != nil {
		return fmt.Errorf("send the answer: %w", err)
	}
	return nil
}

// signalingClosed records why the signaling connection closed with err,
// after the broker's word ended, if any.
func (j *Joined) signalingClosed(ended *protocol.Ended, err error) {
	var ce *websocket.CloseError
	isClose := errors.As(err, &ce)
	j.log.Debug("signaling closed", "err", err)
	switch {
	case ended != nil:
		// It says whether the session ended or the broker cut off this
		// connection alone; from an older broker, only the close does.
		cutOff := ended.Scope == protocol.ScopeConnection
		if ended.Scope == "" {
			cutOff = isClose && ce.Text != sessionEndedClose
		}
		j.finish(ended.Reason, cutOff)
	case isClose && ce.Code == websocket.CloseAbnormalClosure:
		// No close from the broker: the network or the broker went away.
		j.finish("The connection to the broker was lost.", true)
	case isClose && ce.Text != "":
		j.finish("The broker closed the connection: "+ce.Text+".", true)
	case errors.Is(err, os.ErrDeadlineExceeded):
		j.finish("The connection to the broker was lost.", true) // it fell silent
	default:
		j.finish("The connection to the broker closed.", true)
	}
}

// finish marks the connection over, for reason: the session ended, or
// (cutOff) only this connection did and the session may go on.
func (j *Joined) finish(reason string, cutOff bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	select {
	case <-j.done:
		return
	default:
	}
	if reason == "" {
		reason = "The connection to the broker closed."
	}
	j.endReason, j.cutOff = reason, cutOff
	if !cutOff {
		j.state = "ended"
	}
	j.log.Debug("connection over", "reason", reason, "session ended", !cutOff)
	close(j.done)
	j.notifyLocked()
}

func (j *Joined) notifyLocked() {
	close(j.changed)
	j.changed = make(chan struct{})
}

// receive reassembles VP8 frames and keeps the latest keyframe.
func (j *Joined) receive(track *webrtc.TrackRemote) {
	frames := newFrameAssembler()
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		frame := frames.push(pkt)
		if frame == nil {
			continue
		}
		j.frames.Add(1)
		// A VP8 frame tag's lowest bit is 0 for a keyframe (RFC 6386 9.1).
		if len(frame) >= 10 && frame[0]&1 == 0 {
			j.keyframes.Add(1)
			j.mu.Lock()
			j.keyframe = frame // a new slice: Screenshot may be decoding the last one
			j.keyAt = time.Now()
			j.notifyLocked()
			j.mu.Unlock()
		}
	}
}

// Frames counts the video frames received so far.
func (j *Joined) Frames() uint64 { return j.frames.Load() }

// Keyframes counts the keyframes among them.
func (j *Joined) Keyframes() uint64 { return j.keyframes.Load() }

// State is the session's state as the broker last said: waiting (for the
// user's computer), active or ended.
func (j *Joined) State() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state
}

// Host describes the shared desktop, once the host joined.
func (j *Joined) Host() *protocol.HostInfo {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.host
}

// Done is closed when the session ends, or this connection to it does.
func (j *Joined) Done() <-chan struct{} { return j.done }

// EndReason says why the session ended, or why this connection did.
func (j *Joined) EndReason() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.endReason
}

// Disconnected says whether only this connection ended, and the session
// may go on without it (see EndReason for why).
func (j *Joined) Disconnected() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cutOff
}

// Over returns why the connection is over, wrapping ErrEnded or
// ErrDisconnected; nil while it lasts.
func (j *Joined) Over() error {
	select {
	case <-j.done:
	default:
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cutOff {
		return fmt.Errorf("%w: %s", ErrDisconnected, j.endReason)
	}
	return fmt.Errorf("%w: %s", ErrEnded, j.endReason)
}

// RequestKeyframe asks the host, through the broker, for a keyframe. It
// sends a full intra request (RFC 5104), which the broker always passes
// on, not a picture-loss report, which it passes on only when the viewer
// has lost something.
func (j *Joined) RequestKeyframe() error {
	ssrc := j.videoSSRC.Load()
	if ssrc == 0 {
		return errors.New("no video yet")
	}
	seq := uint8(j.firSeq.Add(1))
	return j.pc.WriteRTCP([]rtcp.Packet{&rtcp.FullIntraRequest{MediaSSRC: ssrc, FIR: []rtcp.FIREntry{{SSRC: ssrc, SequenceNumber: seq}}}})
}

// Screenshot asks for a fresh keyframe and decodes it.
func (j *Joined) Screenshot(ctx context.Context) (image.Image, error) {
	asked := time.Now()
	// A lost request, or a keyframe lost on the way, is asked for again,
	// each time after twice as long: on a narrow link a keyframe takes
	// seconds to arrive, and a new request would start another before it
	// did, for every viewer.
	wait := time.Second
	retry := time.NewTimer(wait)
	defer retry.Stop()
	j.RequestKeyframe()
	for {
		j.mu.Lock()
		key, at, changed := j.keyframe, j.keyAt, j.changed // a keyframe is never changed, only replaced
		j.mu.Unlock()
		if len(key) > 0 && !at.Before(asked) {
			return decodeKeyframe(key)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("screenshot: no keyframe arrived: %w", ctx.Err())
		case <-j.done:
			return nil, fmt.Errorf("screenshot: %w", j.Over())
		case <-retry.C:
			j.RequestKeyframe()
			wait *= 2
			retry.Reset(wait)
		case <-changed:
		}
	}
}

func decodeKeyframe(data []byte) (image.Image, error) {
	dec := vp8.NewDecoder()
	dec.Init(bytes.NewReader(data), len(data))
	if _, err := dec.DecodeFrameHeader(); err != nil {
		return nil, fmt.Errorf("decode keyframe header: %w", err)
	}
	img, err := dec.DecodeFrame()
	if err != nil {
		return nil, fmt.Errorf("decode keyframe: %w", err)
	}
	return img, nil
}

// End asks the broker to end the session for everyone.
func (j *Joined) End(reason string) error {
	return j.sig.Send(protocol.TypeEnd, j.ID, protocol.End{Reason: reason})
}

// Close leaves the session (it goes on for others) and waits for the
// client's goroutines.
func (j *Joined) Close() error {
	var errs []error
	if j.sig != nil {
		errs = append(errs, j.sig.Close())
	}
	if j.pc != nil {
		errs = append(errs, j.pc.Close())
	}
	j.wg.Wait()
	if j.api != nil {
		errs = append(errs, j.api.Close())
	}
	return errors.Join(errs...)
}

// fromControl records what the broker and host say on the control channel.
func (j *Joined) fromControl(data []byte) {
	msg, err := protocol.DecodeControl(data)
	if err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lastControl[msg.Type] = msg
	j.notifyLocked()
}

// LastControl returns the latest control message of type typ, if any.
func (j *Joined) LastControl(typ string) (protocol.ControlMessage, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	m, ok := j.lastControl[typ]
	return m, ok
}

// WaitControl waits until cond holds for the latest message of type typ.
func (j *Joined) WaitControl(ctx context.Context, typ string, cond func(protocol.ControlMessage) bool) (protocol.ControlMessage, error) {
	for {
		j.mu.Lock()
		m, ok := j.lastControl[typ]
		changed := j.changed
		j.mu.Unlock()
		if ok && cond(m) {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return m, fmt.Errorf("waiting for %s: %w", typ, ctx.Err())
		case <-j.done:
			return m, fmt.Errorf("waiting for %s: %w", typ, j.Over())
		case <-changed:
		}
	}
}

// waitOpen waits for a data channel to open.
func (j *Joined) waitOpen(ctx context.Context, dc *webrtc.DataChannel) error {
	for dc.ReadyState() != webrtc.DataChannelStateOpen {
		select {
		case <-ctx.Done():
			return fmt.Errorf("data channel %s did not open: %w", dc.Label(), ctx.Err())
		case <-j.done:
			return j.Over()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// SendControl sends a control message.
func (j *Joined) SendControl(ctx context.Context, m protocol.ControlMessage) error {
	data, err := protocol.EncodeControl(m)
	if err != nil {
		return err
	}
	if err := j.waitOpen(ctx, j.control); err != nil {
		return err
	}
	return j.control.Send(data)
}

// TakeControl asks the broker for control (or gives it up) and returns
// what the broker decided, with its reason when it refused.
func (j *Joined) TakeControl(ctx context.Context, enabled bool) (bool, string, error) {
	j.mu.Lock()
	delete(j.lastControl, protocol.ControlMode)
	j.mu.Unlock()
	if err := j.SendControl(ctx, protocol.ControlMessage{Type: protocol.ControlMode, Enabled: enabled}); err != nil {
		return false, "", err
	}
	m, err := j.WaitControl(ctx, protocol.ControlMode, func(protocol.ControlMessage) bool { return true })
	return m.Enabled, m.Reason, err
}

// SendInput sends one input event.
func (j *Joined) SendInput(ctx context.Context, ev protocol.InputEvent) error {
	data, err := ev.MarshalBinary()
	if err != nil {
		return err
	}
	return j.SendRawInput(ctx, data)
}

// SendRawInput sends bytes on the input channel as they are; tests use it
// to play a misbehaving client.
func (j *Joined) SendRawInput(ctx context.Context, data []byte) error {
	if err := j.waitOpen(ctx, j.input); err != nil {
		return err
	}
	return j.input.Send(data)
}

// WaitPermissions waits until the user's grants satisfy cond.
func (j *Joined) WaitPermissions(ctx context.Context, cond func(protocol.Permissions) bool) (protocol.Permissions, error) {
	for {
		j.mu.Lock()
		p, changed := j.perms, j.changed
		j.mu.Unlock()
		if p != nil && cond(*p) {
			return *p, nil
		}
		select {
		case <-ctx.Done():
			if p == nil {
				return protocol.Permissions{}, fmt.Errorf("waiting for permissions: %w", ctx.Err())
			}
			return *p, fmt.Errorf("waiting for permissions (now %v, paused %v): %w", p.Granted, p.Paused, ctx.Err())
		case <-j.done:
			return protocol.Permissions{}, fmt.Errorf("waiting for permissions: %w", j.Over())
		case <-changed:
		}
	}
}

// ErrPaused says a channel closed because the user paused the session: a
// moment's break, after which a transfer carries on where it stopped.
var ErrPaused = errors.New("the user paused the session")

// ClosedBecause says why a channel for perm closed, if the user's word
// (which may come a moment after the close) or the session's end tells:
// nil if neither does within a second, or if perm was never allowed (the
// broker says why it refused).
func (j *Joined) ClosedBecause(perm string) error {
	j.mu.Lock()
	had := j.hadGrant[perm]
	j.mu.Unlock()
	if !had {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return p.Paused || !slices.Contains(p.Granted, perm) })
	switch {
	case errors.Is(err, ErrEnded):
		return errors.New("the session ended: " + j.EndReason())
	case errors.Is(err, ErrDisconnected):
		return errors.New("disconnected: " + j.EndReason())
	case err != nil:
		return nil
	case p.Paused:
		return ErrPaused
	default:
		return errors.New("the user took back " + perm)
	}
}

// RequestPermissions asks the user for more permissions.
func (j *Joined) RequestPermissions(perms ...string) error {
	return j.sig.Send(protocol.TypePermissionRequest, j.ID, protocol.PermissionRequest{Permissions: perms})
}

// Ask asks the user for perms mid-session and waits for the answer: the
// permissions after it, or the broker's reason for not asking (the user is
// still answering an earlier request, say).
func (j *Joined) Ask(ctx context.Context, perms ...string) (protocol.Permissions, error) {
	j.mu.Lock()
	seen := j.permsSeen
	j.refusal = nil
	j.mu.Unlock()
	if err := j.RequestPermissions(perms...); err != nil {
		return protocol.Permissions{}, err
	}
	for {
		j.mu.Lock()
		p, n, refusal, changed := j.perms, j.permsSeen, j.refusal, j.changed
		j.mu.Unlock()
		switch {
		case refusal != nil:
			return protocol.Permissions{}, refusal
		case n > seen && !p.Pending:
			return *p, nil
		}
		select {
		case <-ctx.Done():
			return protocol.Permissions{}, fmt.Errorf("waiting for the user's answer: %w", ctx.Err())
		case <-j.done:
			return protocol.Permissions{}, fmt.Errorf("waiting for the user's answer: %w", j.Over())
		case <-changed:
		}
	}
}

// SendOnChannel opens a data channel of the client's own choosing and
// sends data on it. The session offers no such channel: tests use it to
// play a client that tries file transfer or a shell it was never granted.
func (j *Joined) SendOnChannel(ctx context.Context, label string, data []byte) error {
	dc, err := j.pc.CreateDataChannel(label, nil)
	if err != nil {
		return err
	}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	select {
	case <-opened:
	case <-ctx.Done():
		return fmt.Errorf("channel %s did not open: %w", label, ctx.Err())
	}
	return dc.Send(data)
}

// Observers returns the supervisors the broker last said are watching the
// session read-only.
func (j *Joined) Observers() []protocol.Person {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.observers)
}
