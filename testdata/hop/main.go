// Command hop is the far end of a bare data-channel hop, the floor under
// the benchmarks' files and shell figures: pion peers set up as Tether's
// (internal/rtc), with nothing of Tether's on the channel. It reads an offer
// on its standard input and writes its answer on its standard output (one
// SDP each, as JSON strings), and runs until its standard input closes.
//
// On the channel the offerer opens, it sends each one-byte binary message
// back (a keystroke's echo), counts longer ones (a file's chunks), and
// answers a text message with the count so far. With -relay it is a broker
// with nothing of Tether's: it runs another hop as its child, through a
// second connection on one UDP port as the broker's, and passes every
// message on both ways with the broker's back-pressure.
//
//	hop [-relay]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"

	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/rtc"
	"github.com/tether-support/tether/internal/rtc/rtctest"
)

func main() {
	rtc.TuneGC() // as every Tether program
	relay := flag.Bool("relay", false, "pass every message on, both ways, to a hop of its own")
	flag.Parse()
	if err := run(*relay); err != nil {
		fmt.Fprintln(os.Stderr, "hop:", err)
		os.Exit(1)
	}
}

func run(relay bool) error {
	cfg := rtc.Config{}
	if relay {
		port, err := freeUDPPort()
		if err != nil {
			return err
		}
		cfg.UDPPort = port
	}
	api, err := rtc.NewAPI(cfg)
	if err != nil {
		return err
	}
	defer api.Close()
	var next *webrtc.DataChannel
	if relay {
		var child io.Closer
		if next, child, err = dialNext(api); err != nil {
			return err
		}
		defer child.Close()
	}
	pc, err := api.NewPeerConnection(rtc.Sending{})
	if err != nil {
		return err
	}
	defer pc.Close()
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if next == nil {
			serve(dc)
			return
		}
		pass(dc, next)
		pass(next, dc)
	})
	in := json.NewDecoder(os.Stdin)
	var offer string
	if err := in.Decode(&offer); err != nil {
		return fmt.Errorf("read the offer: %w", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	local, err := rtc.GatherComplete(pc, answer)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(os.Stdout).Encode(local); err != nil {
		return err
	}
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// serve is the far end: echoes, counts and reports.
func serve(dc *webrtc.DataChannel) {
	var got int64
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		switch {
		case m.IsString:
			dc.SendText(strconv.FormatInt(got, 10))
		case len(m.Data) == 1:
			dc.Send(m.Data)
		default:
			got += int64(len(m.Data))
		}
	})
}

// pass forwards what arrives on from to to, waiting while to's buffer is
// full, as the broker's relay does.
func pass(from, to *webrtc.DataChannel) {
	flow := rtc.NewFlow(to, rtc.BulkMarks)
	from.OnMessage(func(m webrtc.DataChannelMessage) {
		if m.IsString {
			flow.SendText(context.Background(), string(m.Data))
		} else {
			flow.Send(context.Background(), m.Data)
		}
	})
}

// dialNext starts a hop as a child and returns the open channel to it, and
// the child's standard input: the child ends once it is closed (or this
// process ends).
func dialNext(api *rtc.API) (*webrtc.DataChannel, io.Closer, error) {
	pc, err := api.NewPeerConnection(rtc.Sending{})
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(os.Args[0])
	cmd.Stderr = os.Stderr
	dc, stdin, err := rtctest.DialProcess(pc, "hop", cmd)
	if err != nil {
		return nil, nil, fmt.Errorf("the next hop: %w", err)
	}
	return dc, stdin, nil
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
