package relay

import (
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
)

// plainAPI is a pion API without interceptors, so that the only RTCP a
// peer sends is what the test writes.
func plainAPI(t *testing.T) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me))
}

func newPeer(t *testing.T, api *webrtc.API) *webrtc.PeerConnection {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if _, _, err := rtc.DataChannels(pc); err != nil {
		t.Fatal(err)
	}
	return pc
}

// newSession returns a relay for one session, closed when the test ends.
func newSession(t *testing.T) *Session {
	t.Helper()
	return newSessionWith(t, Config{})
}

// newSessionWith is newSession with cfg, its API and logger filled in.
func newSessionWith(t *testing.T, cfg Config) *Session {
	t.Helper()
	api, err := rtc.NewAPI(rtc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.API, cfg.Logger = api, slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		api.Close()
	})
	return s
}

// connectHost connects a host peer with one video track to s; it returns
// the track and what RTCP the relay sends the host.
func connectHost(t *testing.T, s *Session) (*webrtc.TrackLocalStaticRTP, <-chan rtcp.Packet) {
	t.Helper()
	return connectHostPeer(t, s, newPeer(t, plainAPI(t)))
}

// connectHostPeer is connectHost for the host peer given, with its data
// channels made.
func connectHostPeer(t *testing.T, s *Session, host *webrtc.PeerConnection) (*webrtc.TrackLocalStaticRTP, <-chan rtcp.Packet) {
	t.Helper()
	video, err := webrtc.NewTrackLocalStaticRTP(rtc.VP8, "screen", "tether")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := host.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	fromRelay := make(chan rtcp.Packet, 64)
	go func() {
		defer close(fromRelay)
		for {
			pkts, _, err := tr.Sender().ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				fromRelay <- p
			}
		}
	}()
	offer, err := host.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	sdp, err := rtc.GatherComplete(host, offer)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := s.AcceptHost(sdp)
	if err != nil {
		t.Fatal(err)
	}
	if err := host.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	return video, fromRelay
}

// TestKeyframeRequests: a viewer's picture-loss report reaches the host
// only when the viewer misses something; a full intra request always does.
func TestKeyframeRequests(t *testing.T) {
	s := newSession(t)

	// The host: one video track, and a count of keyframe requests.
	video, fromRelay := connectHost(t, s)
	var requests atomic.Int32
	go func() {
		for p := range fromRelay {
			if _, ok := p.(*rtcp.PictureLossIndication); ok {
				requests.Add(1)
			}
		}
	}()

	// The viewer, allowed to see; it notes the last packet it received.
	v, viewerOffer, err := s.AddViewer(ViewerOptions{Name: "dana"})
	if err != nil {
		t.Fatal(err)
	}
	viewer := newPeer(t, plainAPI(t))
	var lastSeq, ssrc atomic.Uint32
	viewer.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		ssrc.Store(uint32(tr.SSRC()))
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			lastSeq.Store(uint32(p.SequenceNumber))
		}
	})
	if err := viewer.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: viewerOffer}); err != nil {
		t.Fatal(err)
	}
	viewerAnswer, err := viewer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	sdp, err := rtc.GatherComplete(viewer, viewerAnswer)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetAnswer(sdp); err != nil {
		t.Fatal(err)
	}
	v.SetGrants([]string{protocol.PermView}, false)

	seq := uint16(0)
	send := func() {
		t.Helper()
		seq++
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: true}, Payload: []byte{0x10, 0, 0, 0}}
		if err := video.WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
	}
	// The host sends a packet every 20 ms until the viewer has one.
	deadline := time.Now().Add(10 * time.Second)
	for ssrc.Load() == 0 || lastSeq.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no video reached the viewer")
		}
		send()
		time.Sleep(20 * time.Millisecond)
	}

	// settled waits out the requests already on their way and returns the count.
	settled := func() int32 {
		for n := requests.Load(); ; {
			time.Sleep(500 * time.Millisecond)
			if m := requests.Load(); m == n {
				return n
			}
			n = requests.Load()
		}
	}
	// The keyframes the relay asked for while the viewer connected have
	// reached the host (on a busy machine the last can come after the
	// first packets); then one more packet reaches the viewer, so that
	// the last one it has is the last one forwarded.
	before := settled()
	seen := lastSeq.Load()
	deadline = time.Now().Add(10 * time.Second)
	send()
	for lastSeq.Load() == seen {
		if time.Now().After(deadline) {
			t.Fatal("the last packet did not reach the viewer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	report := func(lost uint32, extra rtcp.Packet) {
		t.Helper()
		rr := &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: ssrc.Load(), LastSequenceNumber: lastSeq.Load(), TotalLost: lost}}}
		if err := viewer.WriteRTCP([]rtcp.Packet{rr, extra}); err != nil {
			t.Fatal(err)
		}
	}
	pli := &rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: ssrc.Load()}

	// Up to date, lost nothing: its timer speaks, the host hears nothing.
	report(0, pli)
	if n := settled(); n != before {
		t.Fatalf("a viewer that misses nothing made the host send %d keyframes", n-before)
	}
	// Lost a packet: the host is asked.
	report(1, pli)
	if n := settled(); n != before+1 {
		t.Fatalf("a viewer that lost a packet: %d keyframe requests reached the host, want 1", n-before)
	}
	// A full intra request always passes.
	report(1, &rtcp.FullIntraRequest{SenderSSRC: 1, MediaSSRC: ssrc.Load(), FIR: []rtcp.FIREntry{{SSRC: ssrc.Load(), SequenceNumber: 1}}})
	if n := settled(); n != before+2 {
		t.Fatalf("a full intra request: %d keyframe requests reached the host, want 1", n-before-1)
	}
}
