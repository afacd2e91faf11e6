package relay

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/tether-support/tether/internal/protocol"
)

// dropNoticeEvery limits how often a viewer is told its input was refused.
const dropNoticeEvery = 2 * time.Second

// Each clipboard message a viewer sends, a text or a fetch, has the user's
// computer run its clipboard program. A technician sends one per paste (a
// held Ctrl+V sends one, not one per repeat) and one per look at the
// remote clipboard: a few a minute, seldom two in a second. clipBurst lets
// a quick run of pastes through at once, and clipRate then holds a console
// gone wrong, or a forged one, to a few a second. The host keeps a looser
// limit of its own (see host/session).
const (
	clipRate  = rate.Limit(5) // messages a second, texts and fetches together
	clipBurst = 10
	// maxClipPending bounds the texts, and apart from them the fetches,
	// sent to the host and not answered yet: a host that never answers
	// (from before answers were given, or stuck) would have them pile up
	// without end. A host that answers has one or two out at a time.
	maxClipPending = 32
)

// errClipUnanswered is why sendClipboard sent nothing: the host has not
// answered maxClipPending earlier messages of the kind.
var errClipUnanswered = errors.New("the host has not answered earlier clipboard messages")

// sendHost forwards a message to the host's control or input channel.
func (s *Session) sendHost(input bool, data []byte) error {
	s.mu.Lock()
	dc := s.hostControl
	if input {
		dc = s.hostInput
	}
	s.mu.Unlock()
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return errors.New("host not connected")
	}
	return dc.Send(data)
}

// releaseAll tells the host to let go of every key and button.
func (s *Session) releaseAll() {
	msg, _ := protocol.InputEvent{Kind: protocol.InputReleaseAll}.MarshalBinary()
	s.sendHost(true, msg)
}

// setHostSilent notes whether the host answers. When it answers again, it
// is first told to let go of the keys and buttons held before it stopped,
// whose release may have been dropped, and only then gets new input.
func (s *Session) setHostSilent(silent bool) {
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	if s.hostSilent && !silent {
		s.releaseAll()
	}
	s.hostSilent = silent
}

// clipSend is one viewer's text sent to the user's clipboard, or one
// viewer's fetch of it, on the host's control channel of the time.
type clipSend struct {
	host   *webrtc.DataChannel
	viewer *Viewer
}

// sendClipboard forwards v's text for the user's clipboard (fetch false)
// or v's fetch of it (fetch true) to the host, noting that the host's
// answer is v's: the host answers every text and every fetch once, in
// order. Both happen under s.mu, so that neither another viewer's message
// nor the answer comes in between. Past maxClipPending unanswered of the
// kind, nothing is sent (errClipUnanswered), and nothing noted: what the
// host was not sent gets no answer to wait for.
func (s *Session) sendClipboard(v *Viewer, fetch bool, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	dc := s.hostControl
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return errors.New("host not connected")
	}
	queue := &s.clipSenders
	if fetch {
		queue = &s.clipFetchers
	}
	// What went to a host that is gone is never answered: it does not
	// count, or a host back after a reconnection would be refused for it.
	*queue = slices.DeleteFunc(*queue, func(sent clipSend) bool { return sent.host != dc })
	if len(*queue) >= maxClipPending {
		return errClipUnanswered
	}
	if err := dc.Send(data); err != nil {
		return err
	}
	*queue = append(*queue, clipSend{host: dc, viewer: v})
	return nil
}

// clipAskerLocked takes the viewer the next answer of the host on channel
// from to a text (fetch false) or to a fetch (fetch true) is for. It
// returns that viewer alone, or nobody. An answer is matched only with
// what was sent to the host that gives it: one still on its way from a
// host that a reconnection replaced must not be taken for the new host's
// answer to another viewer.
func (s *Session) clipAskerLocked(from *webrtc.DataChannel, fetch bool) []*Viewer {
	queue := &s.clipSenders
	if fetch {
		queue = &s.clipFetchers
	}
	for i, sent := range *queue {
		if sent.host == from {
			*queue = slices.Delete(*queue, i, i+1)
			return []*Viewer{sent.viewer}
		}
	}
	return nil
}

// fromHostControl relays what the host says: its displays to viewers
// allowed to see the screen, what the user copies to viewers allowed the
// clipboard, and its answer to
// a viewer's text or fetch only to that viewer: a colleague told that text
// was set, or shown a clipboard or an error, would take it for the answer
// to something they did. A host from before fetches were marked sends its
// answers as copies, to every viewer allowed the clipboard, as it used to.
func (s *Session) fromHostControl(from *webrtc.DataChannel, data []byte) {
	msg, err := protocol.DecodeControl(data)
	if err != nil {
		s.cfg.Logger.Warn("host sent a bad control message", "err", err)
		return
	}
	if msg.Type == protocol.ControlDisplays {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.displays = data
		for v := range s.viewers {
			v.sendDisplaysLocked()
		}
		return
	}
	s.mu.Lock()
	viewers := slices.Collect(maps.Keys(s.viewers))
	switch {
	case msg.Type == protocol.ControlClipboardSet:
		viewers = s.clipAskerLocked(from, false)
	case msg.Type == protocol.ControlClipboard && msg.Fetched:
		viewers = s.clipAskerLocked(from, true)
	}
	s.mu.Unlock()
	if msg.Type == protocol.ControlClipboard && msg.Reason == "" && (!msg.Fetched || len(viewers) == 1) {
		// With a reason, the host says why it sent no text: nothing crossed.
		// A fetch's answer is the fetching technician's alone: the record
		// names them (one nobody asked for goes to nobody).
		to := ""
		if msg.Fetched {
			to = viewers[0].opts.Name
		}
		defer s.tapHostControl(msg, to)
	}
	for _, v := range viewers {
		if msg.Type == protocol.ControlClipboard && !v.allowed(protocol.PermClipboard) {
			continue
		}
		if v.control.ReadyState() == webrtc.DataChannelStateOpen {
			v.control.Send(data)
		}
	}
}

// fromControl handles a viewer's control message: the broker answers
// requests for control itself and forwards the rest to the host only while
// the viewer is in control.
func (v *Viewer) fromControl(data []byte) {
	msg, err := protocol.DecodeControl(data)
	if err != nil {
		v.drop("The control message was refused: " + err.Error())
		return
	}
	switch msg.Type {
	case protocol.ControlMode:
		if msg.Enabled && !v.opts.CanControl {
			v.sendControl(protocol.ControlMessage{Type: protocol.ControlMode, Enabled: false, Reason: "This session is view-only for you."})
			return
		}
		if msg.Enabled && !v.allowed(protocol.PermControl) {
			v.sendControl(protocol.ControlMessage{Type: protocol.ControlMode, Enabled: false, Reason: "The user has not allowed control."})
			return
		}
		turn := 0
		var changed bool
		if msg.Enabled {
			was := v.controlling.Load()
			var taken string
			if turn, taken = v.s.takeControl(v, msg.Turn); taken != "" {
				v.sendControl(protocol.ControlMessage{Type: protocol.ControlMode, Enabled: false, Reason: taken})
				return
			}
			changed = !was
		} else {
			changed = v.stopControl()
		}
		// Only a change is logged and recorded: a release by a viewer not
		// in control, sent again and again, would fill both.
		if changed {
			v.s.cfg.Logger.Info("viewer control", "viewer", v.opts.Name, "enabled", msg.Enabled)
			v.tapControl(protocol.ControlMessage{Type: protocol.ControlMode, Enabled: msg.Enabled})
		}
		v.sendControl(protocol.ControlMessage{Type: protocol.ControlMode, Enabled: msg.Enabled, Turn: turn})
	case protocol.ControlClipboard, protocol.ControlClipboardRequest:
		if !v.allowed(protocol.PermClipboard) {
			v.refuseClipboard(msg, v.notAllowed("The user has not allowed clipboard sharing."))
			return
		}
		// Setting the user's clipboard changes their machine: like input,
		// it needs control taken, not just the permission.
		if msg.Type == protocol.ControlClipboard && (!v.controlling.Load() || !v.allowed(protocol.PermControl)) {
			v.refuseClipboard(msg, "Take control to set the remote clipboard.")
			return
		}
		if !v.clipLimit.AllowN(v.s.cfg.Now(), 1) {
			v.refuseClipboard(msg, "Too many clipboard messages at once: wait a moment, then try again.")
			return
		}
		switch err := v.s.sendClipboard(v, msg.Type == protocol.ControlClipboardRequest, data); {
		case errors.Is(err, errClipUnanswered):
			v.refuseClipboard(msg, "The user's computer has not answered the earlier clipboard messages yet: wait a moment, then try again.")
			return
		case err != nil:
			v.refuseClipboard(msg, "The user's computer is not connected.")
			return
		}
		v.tapControl(msg)
	case protocol.ControlDisplaySelect:
		if !v.controlling.Load() || !v.allowed(protocol.PermControl) {
			v.drop("Take control to switch displays.")
			return
		}
		if err := v.s.sendHost(false, data); err != nil {
			v.drop("The user's computer is not connected.")
			return
		}
		v.tapControl(msg)
	default:
		// Unknown types are skipped: a newer console may send more.
	}
}

// takeControl puts v in control, taking control from whoever had it, and
// returns the turn it has. The user's computer has one mouse and one
// keyboard, and the host one set of keys held: two places in control at
// once (two tabs of one technician, the console and a viewer command, two
// colleagues) would mix their input, and either giving up control would
// let go of the other's keys. What the one that loses control held is let
// go before v's input arrives, and it is told where control went, so that
// it can take it back.
//
// A console back after a reconnection asks with the turn it had (resume):
// it gets control back only if nobody took it meanwhile, and otherwise is
// told who did (taken) and stays in view only. Whoever holds that turn
// still is this same console's connection from before, not yet noticed
// gone: it is let go without a word. The turn is one technician's: another
// cannot take control with it unnoticed.
func (s *Session) takeControl(v *Viewer, resume int) (turn int, taken string) {
	s.controlMu.Lock()
	defer s.controlMu.Unlock()
	if resume != 0 && (resume != s.controlTurn || s.controlBy != v.opts.Name) {
		if s.controlBy == v.opts.Name {
			return 0, "You took control in another window while this one was reconnecting. Click Control to take it back here."
		}
		return 0, s.controlBy + " took control of the user's computer while you were reconnecting. Click Control to take it back."
	}
	if resume == 0 {
		s.controlTurn++
		s.controlBy = v.opts.Name
	}
	s.mu.Lock()
	viewers := slices.Collect(maps.Keys(s.viewers))
	s.mu.Unlock()
	for _, o := range viewers {
		if o == v || !o.stopControl() {
			continue
		}
		if resume != 0 {
			continue
		}
		s.cfg.Logger.Info("viewer control", "viewer", o.opts.Name, "enabled", false, "taken_by", v.opts.Name)
		o.tapControl(protocol.ControlMessage{Type: protocol.ControlMode, Enabled: false})
		reason := v.opts.Name + " took control of the user's computer. Click Control to take it back."
		if o.opts.Name == v.opts.Name {
			reason = "You took control in another window. Click Control to take it back here."
		}
		o.sendControl(protocol.ControlMessage{Type: protocol.ControlMode, Enabled: false, Reason: reason})
	}
	v.controlling.Store(true)
	// The user may have taken control back since the caller checked. Their
	// revoke's stopControl ran before the store, and the revoke is seen
	// here, or it runs after it.
	if !v.allowed(protocol.PermControl) {
		v.stopControl()
		return 0, "The user has not allowed control."
	}
	return s.controlTurn, ""
}

// fromInput forwards a viewer's input to the host, if the viewer is in
// control, the event is well formed and the host answers.
func (v *Viewer) fromInput(data []byte) {
	v.s.inputMu.Lock()
	refused, sent, kind := v.sendInputLocked(data)
	v.s.inputMu.Unlock()
	switch {
	case refused != "":
		v.drop(refused)
	case sent:
		v.tapInput(kind)
	}
}

// sendInputLocked checks one input event and sends it to the host; it
// returns why the event was refused, or whether it was sent. s.inputMu is
// held from the checks to the send, as it is where the viewer loses
// control (see stopControl): an event checked before the release goes
// before it, never after it, where it would stay held.
//
// Nothing goes to a host that stopped answering: the data channel would
// queue the event and deliver it, with everything typed and clicked
// meanwhile, whenever the host came back, on whatever its screen showed
// by then.
func (v *Viewer) sendInputLocked(data []byte) (refused string, sent bool, kind byte) {
	if !v.allowed(protocol.PermControl) {
		return v.notAllowed("The user has not allowed control of the mouse and keyboard."), false, 0
	}
	if !v.controlling.Load() {
		return "This session is view-only: take control to use the mouse and keyboard.", false, 0
	}
	ev, err := protocol.DecodeInput(data)
	if err != nil {
		return "An input event was refused: " + err.Error(), false, 0
	}
	if v.s.hostSilent {
		return "The user's computer is not responding: your mouse and keyboard are paused until it answers.", false, 0
	}
	return "", v.s.sendHost(true, data) == nil, ev.Kind
}

// releaseHeld lets go of the keys and buttons the viewer may hold, if it
// is in control, and leaves it in control.
func (v *Viewer) releaseHeld() {
	v.s.inputMu.Lock()
	defer v.s.inputMu.Unlock()
	if v.controlling.Load() {
		v.s.releaseAll()
	}
}

// stopControl ends the viewer's control, releasing what it held, and
// reports whether it had control. It is one step with the viewer's input
// under way (see sendInputLocked).
func (v *Viewer) stopControl() bool {
	v.s.inputMu.Lock()
	defer v.s.inputMu.Unlock()
	if !v.controlling.Swap(false) {
		return false
	}
	v.s.releaseAll()
	return true
}

// drop counts a refused message and tells the viewer, at most every
// dropNoticeEvery.
func (v *Viewer) drop(reason string) {
	if n, noted := v.refused(reason); noted {
		v.sendControl(protocol.ControlMessage{Type: protocol.ControlInputDropped, Count: int(n), Reason: reason})
	}
}

// refused counts a refused message and reports it (OnRefused), at most
// every dropNoticeEvery; it returns the count so far and whether it
// reported.
func (v *Viewer) refused(reason string) (uint64, bool) {
	n := v.dropped.Add(1)
	v.mu.Lock()
	now := time.Now()
	if now.Sub(v.lastNotice) < dropNoticeEvery {
		v.mu.Unlock()
		return n, false
	}
	v.lastNotice = now
	v.mu.Unlock()
	if v.opts.OnRefused != nil {
		v.opts.OnRefused(reason, n)
	}
	return n, true
}

// refuseClipboard refuses a viewer's clipboard message, telling the
// viewer why. A text with an id is answered as the host answers one
// (clipboard.set with the id and the reason), so that the console takes
// the answer for that text and for no other; a fetch, or a text without
// an id, is dropped as other messages are: an answer would be taken for
// whatever the console sent first.
func (v *Viewer) refuseClipboard(msg protocol.ControlMessage, reason string) {
	if msg.Type != protocol.ControlClipboard || msg.ID == 0 {
		v.drop(reason)
		return
	}
	v.refused(reason)
	v.sendControl(protocol.ControlMessage{Type: protocol.ControlClipboardSet, ID: msg.ID, Reason: reason})
}

func (v *Viewer) sendControl(m protocol.ControlMessage) {
	data, err := protocol.EncodeControl(m)
	if err != nil || v.control.ReadyState() != webrtc.DataChannelStateOpen {
		return
	}
	v.control.Send(data)
}

// allowed reports whether the user granted perm to this viewer, the
// session is not paused and the viewer is not cut off.
func (v *Viewer) allowed(perm string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.allowedLocked(perm)
}

// allowedLocked is allowed with v.mu held.
func (v *Viewer) allowedLocked(perm string) bool {
	return v.grants[perm] && !v.paused && !v.ending && v.cutOff == ""
}

// over reports whether the session ends: its record is closed, and
// nothing more passes either way.
func (v *Viewer) over() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.ending
}

// notAllowed says why a permission does not hold now: the user paused the
// session, or reason.
func (v *Viewer) notAllowed(reason string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.paused {
		return "The user paused the session."
	}
	return reason
}

// SetGrants applies the user's current will for this viewer: what it may
// do, and whether the session is paused. Losing control releases what the
// viewer held; gaining sight asks the host for a keyframe.
func (v *Viewer) SetGrants(granted []string, paused bool) {
	v.mu.Lock()
	couldSee := v.grants[protocol.PermView] && !v.paused
	v.grants = map[string]bool{}
	for _, p := range granted {
		v.grants[p] = true
	}
	v.paused = paused
	v.changedLocked()
	canSee := v.grants[protocol.PermView] && !paused
	canControl := v.grants[protocol.PermControl] && !paused
	if !canSee {
		v.seen = false
	}
	v.mu.Unlock()
	if !canControl {
		v.stopControl()
	}
	if canSee && !couldSee {
		v.s.mu.Lock()
		v.sendDisplaysLocked()
		v.s.mu.Unlock()
		v.requestKeyframe()
	}
	if canSee != couldSee {
		v.s.limitHost() // a viewer that does not watch limits nothing
	}
	// A revoked files or shell permission (or a pause) closes its channels
	// at once.
	v.closePipes(v.allowed, viewerLeft)
}

// forward sends one host packet to the viewer if the user lets it see.
// Sequence numbers stay contiguous across the gaps a pause or a late grant
// leave, so that the viewer does not ask for packets it was never meant
// to have.
func (v *Viewer) forward(pkt *rtp.Packet) {
	v.mu.Lock()
	if !v.allowedLocked(protocol.PermView) {
		v.mu.Unlock()
		return
	}
	if !v.seen {
		v.seqOffset = v.lastSeq + 1 - pkt.SequenceNumber
		v.seen = true
	}
	out := *pkt
	out.SequenceNumber = pkt.SequenceNumber + v.seqOffset
	v.lastSeq = out.SequenceNumber
	v.sentSinceAsk = true
	v.mu.Unlock()
	if err := v.video.WriteRTP(&out); err != nil {
		v.s.cfg.Logger.Debug("forward video", "viewer", v.opts.Name, "err", err)
	}
}

// sendDisplaysLocked gives the viewer the user's displays as the host last
// listed them, if it may see the screen: their names and sizes are the
// user's too. v.s.mu is held, which keeps the lists a viewer gets in order.
func (v *Viewer) sendDisplaysLocked() {
	if v.s.displays != nil && v.allowed(protocol.PermView) && v.control.ReadyState() == webrtc.DataChannelStateOpen {
		v.control.Send(v.s.displays)
	}
}
