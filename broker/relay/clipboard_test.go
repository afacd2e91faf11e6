package relay

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/protocol"
)

// testClock is a clock that moves only when the test says.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Unix(1_700_000_000, 0)} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testHostControl is a host peer's control channel: what reaches it, and
// a way to answer as the host.
type testHostControl struct {
	dc *webrtc.DataChannel

	mu  sync.Mutex
	got []protocol.ControlMessage // the clipboard messages, in order
}

func (h *testHostControl) clipboard() []protocol.ControlMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]protocol.ControlMessage(nil), h.got...)
}

// answer sends m to the relay as the host.
func (h *testHostControl) answer(t *testing.T, m protocol.ControlMessage) {
	t.Helper()
	data, err := protocol.EncodeControl(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.dc.Send(data); err != nil {
		t.Fatal(err)
	}
}

// connectHostControl connects a host peer to s and returns its control
// channel, once open. A host that answers (answers true) sets each text
// and hands out "clipboard N" for the Nth message it got, as a host does;
// one that does not stays silent, as a stuck host or one from before
// answers.
func connectHostControl(t *testing.T, s *Session, answers bool) *testHostControl {
	t.Helper()
	h := &testHostControl{}
	h.dc = connectHostChannel(t, s, false, func(control *webrtc.DataChannel, m webrtc.DataChannelMessage) {
		msg, err := protocol.DecodeControl(m.Data)
		if err != nil || (msg.Type != protocol.ControlClipboard && msg.Type != protocol.ControlClipboardRequest) {
			return
		}
		h.mu.Lock()
		h.got = append(h.got, msg)
		n := len(h.got)
		h.mu.Unlock()
		if !answers {
			return
		}
		answer := protocol.ControlMessage{Type: protocol.ControlClipboardSet, ID: msg.ID}
		if msg.Type == protocol.ControlClipboardRequest {
			answer = protocol.ControlMessage{Type: protocol.ControlClipboard, Fetched: true, Text: fmt.Sprintf("clipboard %d", n)}
		}
		data, _ := protocol.EncodeControl(answer)
		control.Send(data)
	})
	waitFor(t, "the relay's side of the host's control channel did not open", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.hostControl != nil && s.hostControl.ReadyState() == webrtc.DataChannelStateOpen
	})
	return h
}

// sendClip sends n clipboard messages as the viewer: texts and fetches
// in turn, a text first, or fetches only.
func (tv *testViewer) sendClip(t *testing.T, n int, fetchesOnly bool) {
	t.Helper()
	for i := range n {
		m := protocol.ControlMessage{Type: protocol.ControlClipboard, Text: fmt.Sprintf("text %d", i)}
		if fetchesOnly || i%2 == 1 {
			m = protocol.ControlMessage{Type: protocol.ControlClipboardRequest}
		}
		data, err := protocol.EncodeControl(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := tv.control.Send(data); err != nil {
			t.Fatal(err)
		}
	}
}

// receive waits for the viewer's next message other than modes and
// displays.
func (tv *testViewer) receive(t *testing.T) protocol.ControlMessage {
	t.Helper()
	select {
	case m := <-tv.others:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("the viewer was told nothing")
		return protocol.ControlMessage{}
	}
}

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
	}
}

// quiet waits a moment for what is on its way to arrive.
func quiet() { time.Sleep(300 * time.Millisecond) }

// clipPending is how many texts and fetches wait for the host's answer.
func (s *Session) clipPending() (texts, fetches int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clipSenders), len(s.clipFetchers)
}

// TestClipboardFlood: a technician's console (or a forged one) that sends
// texts and fetches for the user's clipboard as fast as it can gets
// clipBurst of them to the user's computer, each answered to it, and is
// told in a sentence why the rest were not; once a moment has passed, the
// next one goes through again.
func TestClipboardFlood(t *testing.T) {
	clock := newTestClock()
	s := newSessionWith(t, Config{Now: clock.now})
	host := connectHostControl(t, s, true)
	a := connectViewer(t, s, ViewerOptions{CanControl: true, Name: "dana", ID: "v_1"})
	a.v.SetGrants([]string{protocol.PermView, protocol.PermControl, protocol.PermClipboard}, false)
	a.takeControl(t)

	const flood = 4 * clipBurst
	a.sendClip(t, flood, false)
	waitFor(t, "the viewer's flood was not all handled", func() bool {
		return len(host.clipboard())+int(a.v.dropped.Load()) >= flood
	})
	quiet()
	if got := host.clipboard(); len(got) != clipBurst {
		t.Fatalf("the user's computer was asked %d times, want %d", len(got), clipBurst)
	}
	var answers, notices []protocol.ControlMessage
	for len(answers) < clipBurst || len(notices) == 0 {
		if m := a.receive(t); m.Type == protocol.ControlInputDropped {
			notices = append(notices, m)
		} else {
			answers = append(answers, m)
		}
	}
	quiet()
	for len(a.others) > 0 {
		t.Errorf("the viewer was told more: %+v", <-a.others)
	}
	for i, m := range answers {
		want := protocol.ControlClipboardSet
		if i%2 == 1 {
			want = protocol.ControlClipboard
		}
		if m.Type != want || m.Reason != "" {
			t.Errorf("answer %d is %+v, want a %s", i, m, want)
		}
	}
	// One notice: the next ones would come only dropNoticeEvery later.
	if len(notices) != 1 || notices[0].Reason != "Too many clipboard messages at once: wait a moment, then try again." {
		t.Errorf("the viewer was told %+v", notices)
	}
	if texts, fetches := s.clipPending(); texts != 0 || fetches != 0 {
		t.Errorf("%d texts and %d fetches wait for an answer, after all were answered", texts, fetches)
	}

	clock.advance(time.Second / time.Duration(clipRate))
	a.sendClip(t, 1, true)
	if m := a.receive(t); m.Type != protocol.ControlClipboard || m.Text != fmt.Sprintf("clipboard %d", clipBurst+1) {
		t.Fatalf("a fetch a moment after the flood was answered %+v", m)
	}
}

// TestClipboardTextsAnsweredByID: each text a console numbers gets one
// answer with its number, whether the host set it or the broker refused it
// (no control, over the rate, the host gone), and no notice besides: a
// console that pairs answers with texts by their order took the answer to
// a later text for one the broker refused without a word.
func TestClipboardTextsAnsweredByID(t *testing.T) {
	clock := newTestClock()
	s := newSessionWith(t, Config{Now: clock.now})
	host := connectHostControl(t, s, true)
	a := connectViewer(t, s, ViewerOptions{CanControl: true, Name: "dana", ID: "v_1"})
	a.v.SetGrants([]string{protocol.PermView, protocol.PermControl, protocol.PermClipboard}, false)
	text := func(id int) {
		t.Helper()
		data, err := protocol.EncodeControl(protocol.ControlMessage{Type: protocol.ControlClipboard, Text: fmt.Sprintf("text %d", id), ID: id})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.control.Send(data); err != nil {
			t.Fatal(err)
		}
	}
	answers := func(n int) map[int]string {
		t.Helper()
		got := map[int]string{}
		for range n {
			m := a.receive(t)
			if m.Type != protocol.ControlClipboardSet {
				t.Fatalf("the viewer was told %+v, want an answer to a text", m)
			}
			if _, twice := got[m.ID]; twice {
				t.Fatalf("text %d was answered twice", m.ID)
			}
			got[m.ID] = m.Reason
		}
		quiet()
		for len(a.others) > 0 {
			t.Errorf("the viewer was told more: %+v", <-a.others)
		}
		return got
	}

	text(1)
	if got := answers(1); got[1] != "Take control to set the remote clipboard." {
		t.Fatalf("a text without control was answered %v", got)
	}
	a.takeControl(t)
	const flood = clipBurst + 5
	for id := 2; id < 2+flood; id++ {
		text(id)
	}
	got := answers(flood)
	for id := 2; id < 2+flood; id++ {
		want := ""
		if id >= 2+clipBurst {
			want = "Too many clipboard messages at once: wait a moment, then try again."
		}
		if reason, ok := got[id]; !ok || reason != want {
			t.Errorf("text %d was answered %q (answered: %v), want %q", id, reason, ok, want)
		}
	}
	if n := len(host.clipboard()); n != clipBurst {
		t.Errorf("the user's computer got %d texts, want %d", n, clipBurst)
	}

	host.dc.Close()
	waitFor(t, "the relay did not see the host's channel close", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.hostControl == nil || s.hostControl.ReadyState() != webrtc.DataChannelStateOpen
	})
	clock.advance(time.Hour)
	text(100)
	if got := answers(1); got[100] != "The user's computer is not connected." {
		t.Fatalf("a text with the host gone was answered %v", got)
	}
}

// TestClipboardPendingBounded: with a host that does not answer, the
// fetches waiting for its answer stop at maxClipPending; those past it do
// not reach the host, and the technician is told why. When the host
// answers one, the next fetch goes; a host back after a reconnection is
// not refused for what its predecessor left unanswered.
func TestClipboardPendingBounded(t *testing.T) {
	clock := newTestClock()
	s := newSessionWith(t, Config{Now: clock.now})
	host := connectHostControl(t, s, false)
	a := connectViewer(t, s, ViewerOptions{CanControl: true, Name: "dana", ID: "v_1"})
	a.v.SetGrants([]string{protocol.PermView, protocol.PermControl, protocol.PermClipboard}, false)
	a.takeControl(t)

	// In runs the rate allows, a moment apart.
	sent := 0
	for sent < maxClipPending+clipBurst {
		clock.advance(time.Hour)
		a.sendClip(t, clipBurst, true)
		sent += clipBurst
		want := min(sent, maxClipPending)
		waitFor(t, fmt.Sprintf("fewer than %d fetches reached the host", want), func() bool { return len(host.clipboard()) >= want })
	}
	waitFor(t, "the fetches past the bound were not all handled", func() bool {
		return len(host.clipboard())+int(a.v.dropped.Load()) >= sent
	})
	quiet()
	if got := len(host.clipboard()); got != maxClipPending {
		t.Fatalf("%d fetches reached the host, want %d", got, maxClipPending)
	}
	if _, fetches := s.clipPending(); fetches != maxClipPending {
		t.Fatalf("%d fetches wait for an answer, want %d", fetches, maxClipPending)
	}
	m := a.receive(t)
	if m.Type != protocol.ControlInputDropped || m.Reason != "The user's computer has not answered the earlier clipboard messages yet: wait a moment, then try again." {
		t.Fatalf("the viewer was told %+v", m)
	}
	if n := a.v.dropped.Load(); n != uint64(sent-maxClipPending) {
		t.Fatalf("%d fetches were refused, want %d", n, sent-maxClipPending)
	}

	// The host answers the first: the answer is the viewer's, and the next
	// fetch goes.
	host.answer(t, protocol.ControlMessage{Type: protocol.ControlClipboard, Fetched: true, Text: "at last"})
	if m := a.receive(t); m.Type != protocol.ControlClipboard || m.Text != "at last" {
		t.Fatalf("the host's answer reached the viewer as %+v", m)
	}
	clock.advance(time.Hour)
	a.sendClip(t, 1, true)
	waitFor(t, "a fetch after the host answered did not reach it", func() bool { return len(host.clipboard()) == maxClipPending+1 })

	again := connectHostControl(t, s, true)
	clock.advance(time.Hour)
	a.sendClip(t, 1, true)
	if m := a.receive(t); m.Type != protocol.ControlClipboard || m.Text != "clipboard 1" {
		t.Fatalf("a fetch after the host reconnected was answered %+v (dropped %d, host got %d)", m, a.v.dropped.Load(), len(again.clipboard()))
	}
	if got := len(again.clipboard()); got != 1 {
		t.Fatalf("the reconnected host got %d fetches, want 1", got)
	}
}

// TestClipboardAnswerFromReplacedHost: an answer still on its way from a
// host that a reconnection replaced is not taken for the new host's answer
// to another viewer, who gets the new host's own answer and nothing else.
// (What was sent to the replaced host is forgotten once something goes to
// the new one: the answer reaches nobody.)
func TestClipboardAnswerFromReplacedHost(t *testing.T) {
	s := newSessionWith(t, Config{})
	first := connectHostControl(t, s, false)
	a := connectViewer(t, s, ViewerOptions{Name: "dana", ID: "v_1"})
	b := connectViewer(t, s, ViewerOptions{Name: "lee", ID: "v_2"})
	for _, tv := range []*testViewer{a, b} {
		tv.v.SetGrants([]string{protocol.PermView, protocol.PermClipboard}, false)
	}
	a.sendClip(t, 1, true)
	waitFor(t, "dana's fetch did not reach the first host", func() bool { return len(first.clipboard()) == 1 })
	s.mu.Lock()
	old := s.hostControl
	s.mu.Unlock()

	second := connectHostControl(t, s, false)
	b.sendClip(t, 1, true)
	waitFor(t, "lee's fetch did not reach the new host", func() bool { return len(second.clipboard()) == 1 })

	// The first host's answer, sent just before it was replaced.
	late, err := protocol.EncodeControl(protocol.ControlMessage{Type: protocol.ControlClipboard, Fetched: true, Text: "from the first host"})
	if err != nil {
		t.Fatal(err)
	}
	s.fromHostControl(old, late)
	second.answer(t, protocol.ControlMessage{Type: protocol.ControlClipboard, Fetched: true, Text: "from the new host"})
	if m := b.receive(t); m.Text != "from the new host" {
		t.Fatalf("lee, who asked the new host, was told %+v", m)
	}
	quiet()
	for _, tv := range []*testViewer{a, b} {
		for len(tv.others) > 0 {
			t.Errorf("%s was told more: %+v", tv.v.opts.Name, <-tv.others)
		}
	}
}

// TestControlTakenAsRevoked: a click on Control that passed its check
// just before the user took control back does not leave the technician in
// control, and what they send next cannot set the user's clipboard, which
// needs control taken. (The two goroutines' steps are run here in the
// order that let it through.)
func TestControlTakenAsRevoked(t *testing.T) {
	s := newSessionWith(t, Config{Now: newTestClock().now})
	host := connectHostControl(t, s, true)
	a := connectViewer(t, s, ViewerOptions{CanControl: true, Name: "dana", ID: "v_1"})
	a.v.SetGrants([]string{protocol.PermView, protocol.PermControl, protocol.PermClipboard}, false)
	if !a.v.allowed(protocol.PermControl) { // fromControl's check
		t.Fatal("control not allowed")
	}
	a.v.SetGrants([]string{protocol.PermView, protocol.PermClipboard}, false) // the user takes control back
	if _, taken := s.takeControl(a.v, 0); taken == "" || a.v.controlling.Load() {
		t.Fatalf("control taken after the user took it back (refusal %q)", taken)
	}
	data, err := protocol.EncodeControl(protocol.ControlMessage{Type: protocol.ControlClipboard, Text: "rm -rf ~", ID: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.control.Send(data); err != nil {
		t.Fatal(err)
	}
	if m := a.receive(t); m.Type != protocol.ControlClipboardSet || m.ID != 7 || m.Reason == "" {
		t.Fatalf("the viewer was told %+v, want the text refused", m)
	}
	for _, m := range host.clipboard() {
		if m.Type == protocol.ControlClipboard {
			t.Fatalf("the user's clipboard was set by a technician not in control: %+v", m)
		}
	}
}
