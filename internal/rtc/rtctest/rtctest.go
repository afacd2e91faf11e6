// Package rtctest joins real pion peers, in one process or with a peer in
// another, and makes up packets, for tests.
package rtctest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"testing"
	"time"

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

// DialProcess opens a data channel labelled label from pc to the peer cmd
// runs, which reads an offer on its standard input and writes its answer
// on its standard output, one SDP each as a JSON string (testdata/hop does).
// It starts cmd and returns the open channel and cmd's standard input,
// whose closing ends cmd.
func DialProcess(pc *webrtc.PeerConnection, label string, cmd *exec.Cmd) (*webrtc.DataChannel, io.WriteCloser, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	dc, err := pc.CreateDataChannel(label, nil)
	if err != nil {
		return nil, stdin, err
	}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, stdin, err
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, stdin, err
	}
	<-done
	if err := json.NewEncoder(stdin).Encode(pc.LocalDescription().SDP); err != nil {
		return nil, stdin, err
	}
	var answer string
	if err := json.NewDecoder(stdout).Decode(&answer); err != nil {
		return nil, stdin, fmt.Errorf("read the answer: %w", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return nil, stdin, err
	}
	select {
	case <-opened:
		return dc, stdin, nil
	case <-time.After(10 * time.Second):
		return nil, stdin, errors.New("the data channel did not open")
	}
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
