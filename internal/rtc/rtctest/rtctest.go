// Package rtctest joins real pion peers in one process, and makes up
// packets, for tests.
package rtctest

import (
	"testing"

	"github.com/pion/rtp"
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

// VP8PacketSeeds are fuzz seeds for VP8Packets.
var VP8PacketSeeds = [][]byte{
	{0, 1, 0, 0x11, 3, 1, 2, 3},                                     // one whole frame
	{0, 2, 0, 0x10, 2, 4, 5, 0, 1, 0, 0x01, 2, 1, 2},                // its packets backwards
	{0xff, 0xff, 0, 0x01, 1, 9, 0, 0, 0, 0x10, 1, 8},                // across the wrap
	{0, 1, 0, 0x01, 1, 9, 0, 3, 1, 0x11, 1, 8, 0, 3, 1, 0x11, 1, 8}, // a gap, then a repeat
}

// VP8Packets reads fuzz data as RTP packets of VP8: per packet a sequence
// number (2 bytes), a timestamp (1), flags (1: bit 0 starts partition 0,
// bits 1-3 the partition, bit 4 the marker), then up to 15 bytes of
// payload (length in the next byte's low 4 bits).
func VP8Packets(data []byte) []*rtp.Packet {
	var out []*rtp.Packet
	for len(data) >= 5 {
		seq, ts, flags, n := uint16(data[0])<<8|uint16(data[1]), uint32(data[2])*3000, data[3], int(data[4]&15)
		data = data[5:]
		n = min(n, len(data))
		desc := (flags >> 1) & 7 // PID
		if flags&1 != 0 {
			desc |= 0x10 // S
		}
		out = append(out, &rtp.Packet{
			Header:  rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: flags&16 != 0},
			Payload: append([]byte{desc}, data[:n]...),
		})
		data = data[n:]
	}
	return out
}
