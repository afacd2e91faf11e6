package session

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/tether-support/tether/host/clipboard"
	"github.com/tether-support/tether/host/input"
	"github.com/tether-support/tether/internal/protocol"
)

// clipboardPoll is how often the user's clipboard is checked for changes.
const clipboardPoll = 500 * time.Millisecond

// The user's computer limits the technicians' clipboard messages itself,
// whatever the broker let through: each text and each fetch runs the
// clipboard program. The limit is looser than the broker's (5 a second,
// 10 at once), so that a broker that keeps its own never meets it.
const (
	clipRate  = rate.Limit(10) // messages a second, texts and fetches together
	clipBurst = 20
)

// displaysPoll is how often the user's monitors are checked for changes:
// one plugged in or unplugged, another resolution.
const displaysPoll = 2 * time.Second

// remote carries out what the technician asks of the user's machine:
// input events, clipboard text, the choice of display.
type remote struct {
	log     *slog.Logger
	inj     *input.Injector
	control *webrtc.DataChannel
	// allow says what the user lets the technicians do now; it is checked
	// here whatever the broker let through.
	allow func(perm string) bool
	// selectDisplay switches the shared display and returns the new list.
	selectDisplay func(index int) (protocol.ControlMessage, error)
	// pressed, when set, is told of each button, key or text that went in.
	pressed func()

	// now is the clock of the clipboard limit; time.Now if nil.
	now func() time.Time

	mu       sync.Mutex
	clip     string // the text last synced either way, not echoed back
	lastDrop time.Time
	// refusedCount counts messages refused: not allowed, or over a limit.
	refusedCount int
	clipLimit    *rate.Limiter // made on the first clipboard message
}

// onInput applies one input message; bad events are dropped and counted.
func (r *remote) onInput(data []byte) {
	// Letting go is always allowed: it can only give the user back control.
	if len(data) == 1 && data[0] == protocol.InputReleaseAll {
		r.inj.ReleaseAll()
		return
	}
	if !r.allow(protocol.PermControl) {
		r.refused("input", "the user has not allowed it")
		return
	}
	err := r.inj.Handle(data)
	if err == nil && r.pressed != nil && (data[0] == protocol.InputButton || data[0] == protocol.InputKey || data[0] == protocol.InputText) {
		r.pressed()
	}
	if !r.allow(protocol.PermControl) {
		// Taken back while the event went in, and the release may have
		// come first: let go of what it pressed.
		r.inj.ReleaseAll()
	}
	if err != nil {
		r.mu.Lock()
		quiet := time.Since(r.lastDrop) < time.Second
		r.lastDrop = time.Now()
		r.mu.Unlock()
		if !quiet {
			_, dropped := r.inj.Stats()
			r.log.Warn("input event dropped", "err", err, "dropped", dropped)
		}
	}
}

// onControl handles a control message relayed by the broker.
func (r *remote) onControl(data []byte) {
	msg, err := protocol.DecodeControl(data)
	if err != nil {
		r.log.Warn("control message refused", "err", err)
		return
	}
	need := map[string]string{
		protocol.ControlClipboard:        protocol.PermClipboard,
		protocol.ControlClipboardRequest: protocol.PermClipboard,
		protocol.ControlDisplaySelect:    protocol.PermControl,
	}[msg.Type]
	if need != "" && !r.allow(need) {
		r.refused(msg.Type, "the user has not allowed it")
		r.refuseClipboard(msg, "The user has not allowed clipboard sharing.")
		return
	}
	if need == protocol.PermClipboard && !r.clipAllowed() {
		r.refused(msg.Type, "too many clipboard messages")
		r.refuseClipboard(msg, "The user's computer received too many clipboard messages at once: wait a moment, then try again.")
		return
	}
	switch msg.Type {
	case protocol.ControlClipboard:
		r.mu.Lock()
		r.clip = msg.Text
		r.mu.Unlock()
		// The console waits for this before it presses the V of a Ctrl+V,
		// which comes on the input channel and would otherwise paste
		// whatever the clipboard held before.
		done := protocol.ControlMessage{Type: protocol.ControlClipboardSet, ID: msg.ID}
		if err := clipboard.Write(msg.Text); err != nil {
			r.log.Warn("set clipboard", "err", err)
			done.Reason = "The user's clipboard could not be set."
		}
		r.send(done)
	case protocol.ControlClipboardRequest:
		text, err := clipboard.Read()
		if err != nil {
			r.log.Warn("read clipboard", "err", err)
			r.send(protocol.ControlMessage{Type: protocol.ControlClipboard, Fetched: true, Reason: "The remote clipboard could not be read."})
			return
		}
		r.sendClipboard(text, true)
	case protocol.ControlDisplaySelect:
		list, err := r.selectDisplay(msg.Index)
		if err != nil {
			r.log.Warn("switch display", "index", msg.Index, "err", err)
		}
		r.send(list)
	}
}

// refuseClipboard answers a text (ControlClipboard) or a fetch
// (ControlClipboardRequest) that was refused, saying why; other types get
// no answer. Every text and every fetch is answered: the broker gives
// each answer to the technician who asked, in order.
func (r *remote) refuseClipboard(msg protocol.ControlMessage, reason string) {
	switch msg.Type {
	case protocol.ControlClipboard:
		r.send(protocol.ControlMessage{Type: protocol.ControlClipboardSet, Reason: reason, ID: msg.ID})
	case protocol.ControlClipboardRequest:
		r.send(protocol.ControlMessage{Type: protocol.ControlClipboard, Fetched: true, Reason: reason})
	}
}

// clipAllowed takes one clipboard message from the limit, reporting
// whether there was room for it.
func (r *remote) clipAllowed() bool {
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clipLimit == nil {
		r.clipLimit = rate.NewLimiter(clipRate, clipBurst)
	}
	return r.clipLimit.AllowN(now(), 1)
}

// refused logs, at most once a second, what was refused and why.
func (r *remote) refused(what, why string) {
	r.mu.Lock()
	quiet := time.Since(r.lastDrop) < time.Second
	r.lastDrop = time.Now()
	r.refusedCount++
	n := r.refusedCount
	r.mu.Unlock()
	if !quiet {
		r.log.Warn("refused: "+why, "what", what, "refused", n)
	}
}

// watchClipboard sends the user's clipboard to the technician when the
// user copies something, until ctx ends.
func (r *remote) watchClipboard(ctx context.Context) {
	err := clipboard.Watch(ctx, clipboardPoll, func(text string) {
		r.mu.Lock()
		echo := text == r.clip
		r.mu.Unlock()
		if !echo && r.allow(protocol.PermClipboard) {
			r.sendClipboard(text, false)
		}
	})
	if err != nil {
		r.log.Warn("clipboard sharing is off", "err", err)
	}
}

// watchDisplays sends the technicians the user's monitors again whenever
// they change, until ctx ends: a monitor plugged in mid-session can be
// chosen, and the list shows each monitor's size as it is now. sent is
// the list they have; changed is told each new one first.
func (r *remote) watchDisplays(ctx context.Context, sent protocol.ControlMessage, list func() (protocol.ControlMessage, error), changed func(protocol.ControlMessage)) {
	t := time.NewTicker(displaysPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := list()
		if err != nil || (now.Current == sent.Current && slices.Equal(now.Displays, sent.Displays)) {
			continue
		}
		changed(now)
		r.send(now)
		sent = now
	}
}

// sendClipboard gives the technicians the user's clipboard text; text
// over the limit is not sent, and they are told why instead, so that they
// do not take what they saw before for what the user copied now. Fetched
// text is the answer to one technician's fetch, which the broker gives
// only to them; it is not taken as seen by all, so that when the user
// copied it just before the fetch, watchClipboard still sends it to every
// technician.
func (r *remote) sendClipboard(text string, fetched bool) {
	tooLarge := protocol.ControlMessage{Type: protocol.ControlClipboard, Fetched: fetched, Reason: fmt.Sprintf(
		"The remote clipboard holds more than the %d KiB of text that can be shared. Ask the user to copy a shorter piece.",
		protocol.MaxClipboard/1024)}
	if len(text) > protocol.MaxClipboard {
		// The clipboard is read no further than one byte past the limit:
		// how much more it holds is not known.
		r.log.Warn("clipboard not sent: too large", "limit", protocol.MaxClipboard)
		r.send(tooLarge)
		return
	}
	if !fetched {
		r.mu.Lock()
		r.clip = text
		r.mu.Unlock()
	}
	msg := protocol.ControlMessage{Type: protocol.ControlClipboard, Fetched: fetched, Text: asUTF8(text)}
	if _, err := protocol.EncodeControl(msg); err != nil {
		// Over the limit once made UTF-8, or too full of control
		// characters to fit a message once encoded: said, as above, and
		// a fetch is answered all the same.
		r.log.Warn("clipboard not sent", "err", err)
		converted := msg.Text
		msg = tooLarge
		if len(converted) <= protocol.MaxClipboard {
			msg.Reason = "The remote clipboard holds text with too many control characters to be shared. Ask the user to copy a shorter piece."
		}
	}
	r.send(msg)
}

// asUTF8 is clipboard text as UTF-8. A program that offers its selection
// only as STRING (Latin-1, as X11 defines it) gives bytes that are not
// UTF-8, which no message may carry: they are read as Latin-1.
func asUTF8(text string) string {
	if utf8.ValidString(text) {
		return text
	}
	runes := make([]rune, len(text))
	for i := range len(text) {
		runes[i] = rune(text[i])
	}
	return string(runes)
}

func (r *remote) send(m protocol.ControlMessage) {
	data, err := protocol.EncodeControl(m)
	if err != nil {
		r.log.Warn("control message not sent", "type", m.Type, "err", err)
		return
	}
	if r.control.ReadyState() == webrtc.DataChannelStateOpen {
		r.control.Send(data)
	}
}

// mediaChanged follows the media connection to the broker. When it goes
// quiet (the network dropped, the broker froze), what a technician held
// down is let go at once: their release may never come, and the
// connection is given up only half a minute later, while the user, at
// their own keyboard meanwhile, would type with a key held that they
// cannot see. The broker lets go too when the link comes back.
func (r *remote) mediaChanged(state webrtc.PeerConnectionState) {
	switch state {
	case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		r.inj.ReleaseAll()
	}
}
