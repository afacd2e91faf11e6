package e2e

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
	"github.com/tether-support/tether/internal/rtc/rtctest"
	"github.com/tether-support/tether/internal/xtest"
)

// The floor under the files and shell figures: the same path with nothing
// of Tether's on it. testdata/hop is a bare pion peer set up as Tether's
// peers are; with -relay it passes everything on to a hop of its own, as
// the broker does, in three processes like the viewer, broker and host.

// hopTo starts testdata/hop, with relay through a relay to its far end,
// and returns this end of an open, ordered data channel to it.
func hopTo(b *testing.B, relay bool) *webrtc.DataChannel {
	args := []string{}
	if relay {
		args = append(args, "-relay")
	}
	api, err := rtc.NewAPI(rtc.Config{})
	if err != nil {
		b.Fatal(err)
	}
	pc, err := api.NewPeerConnection(rtc.Sending{})
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(xtest.Build(b, "./testdata/hop"), args...)
	var errs syncBuffer
	cmd.Stderr = &errs
	dc, stdin, err := rtctest.DialProcess(pc, "hop", cmd)
	b.Cleanup(func() {
		pc.Close()
		api.Close()
		if stdin != nil {
			stdin.Close()
			cmd.Wait()
		}
	})
	if err != nil {
		b.Fatalf("testdata/hop: %v %s", err, errs.String())
	}
	return dc
}

// hopTransfer sends size bytes to the far end of dc in file-sized chunks
// with the files channel's back-pressure, and returns how long it took
// until the far end said it had them all.
func hopTransfer(b *testing.B, ctx context.Context, dc *webrtc.DataChannel, size int) time.Duration {
	counts := make(chan string, 1)
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if m.IsString {
			counts <- string(m.Data)
		}
	})
	flow := rtc.NewFlow(dc, rtc.BulkMarks)
	chunk := make([]byte, protocol.FileChunk)
	start := time.Now()
	for sent := 0; sent < size; sent += len(chunk) {
		if err := flow.Send(ctx, chunk[:min(len(chunk), size-sent)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := flow.SendText(ctx, "count"); err != nil {
		b.Fatal(err)
	}
	select {
	case n := <-counts:
		if n != strconv.Itoa(size) {
			b.Fatalf("the far end got %s of %d bytes", n, size)
		}
	case <-ctx.Done():
		b.Fatal("the far end did not say how much it got")
	}
	return time.Since(start)
}

// hopEcho is a terminal whose far end sends each key back.
func hopEcho(dc *webrtc.DataChannel) terminal {
	out := make(chan chunk, 64)
	dc.OnMessage(func(m webrtc.DataChannelMessage) { out <- chunk{m.Data, time.Now()} })
	return terminal{write: dc.Send, out: out}
}

// localShell is bash on a terminal of this process, with no network in
// between: what the shell's own echo costs, on every path alike.
func localShell(b *testing.B) terminal {
	cmd := exec.Command("bash", "-i")
	cmd.Env = append(os.Environ(), "TERM=xterm")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 120, Rows: 40})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		ptmx.Close()
	})
	out := readTimed(ptmx)
	ptmx.WriteString("PS1='$ '\r")
	settle(out, 500*time.Millisecond)
	return terminal{write: func(p []byte) error { _, err := ptmx.Write(p); return err }, out: out}
}
