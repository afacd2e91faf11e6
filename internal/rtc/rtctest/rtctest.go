// Package rtctest joins real pion peers in one process, for tests.
package rtctest

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

// Connect runs the offer/answer exchange between offerer and answerer,
// every candidate gathered first, so that the two connect over loopback.
// The offerer needs something to offer: a data channel or a track.
func Connect(tb testing.TB, offerer, answerer *webrtc.PeerConnection) {
	tb.Helper()
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := answerer.SetRemoteDescription(gathered(tb, offerer, offer)); err != nil {
		tb.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := offerer.SetRemoteDescription(gathered(tb, answerer, answer)); err != nil {
		tb.Fatal(err)
	}
}

// gathered sets desc as pc's local description and returns it once every
// candidate is in it.
func gathered(tb testing.TB, pc *webrtc.PeerConnection, desc webrtc.SessionDescription) webrtc.SessionDescription {
	tb.Helper()
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		tb.Fatal(err)
	}
	<-done
	return *pc.LocalDescription()
}
