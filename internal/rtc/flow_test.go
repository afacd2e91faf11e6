package rtc

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/rtc/rtctest"
)

// connected returns two real pion peers joined over loopback; what pion
// logs at info level and above goes to logs, if given.
func connected(t *testing.T, logs io.Writer) (a, b *webrtc.PeerConnection) {
	t.Helper()
	newPC := func() *webrtc.PeerConnection {
		cfg := Config{}
		if logs != nil {
			cfg.Logs = &logging.DefaultLoggerFactory{Writer: logs, DefaultLogLevel: logging.LogLevelInfo}
		}
		api, err := NewAPI(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { api.Close() })
		pc, err := api.NewPeerConnection(Sending{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return pc
	}
	a, b = newPC(), newPC()
	if _, err := a.CreateDataChannel("control", nil); err != nil {
		t.Fatal(err)
	}
	rtctest.Connect(t, a, b)
	return a, b
}

// TestFlow: a sender much faster than the link never queues more than the
// high-water mark, every byte arrives in order, and no packet is dropped
// inside pion on the way (each drop the sender does not repair at once
// stalls the transfer for a one-second retransmission timeout).
func TestFlow(t *testing.T) {
	for _, tc := range []struct {
		name  string
		marks Marks
		total int
	}{
		{"bulk", BulkMarks, 64 << 20},
		{"terminal", TerminalMarks, 16 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) { testFlow(t, tc.marks, tc.total) })
	}
}

func testFlow(t *testing.T, marks Marks, total int) {
	const chunk = 64 << 10
	var logs syncWriter
	a, b := connected(t, &logs)
	done := make(chan [32]byte, 1)
	b.OnDataChannel(func(dc *webrtc.DataChannel) {
		h := sha256.New()
		n := 0
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			h.Write(m.Data)
			if n += len(m.Data); n == total {
				var sum [32]byte
				copy(sum[:], h.Sum(nil))
				done <- sum
			}
		})
	})
	dc := openChannel(t, a, "bulk")
	f := NewFlow(dc, marks)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := sha256.New()
	buf := make([]byte, chunk)
	var peak uint64
	start := time.Now()
	for sent := 0; sent < total; sent += chunk {
		for i := range buf {
			buf[i] = byte(sent/chunk + i)
		}
		want.Write(buf)
		if err := f.Send(ctx, buf); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, dc.BufferedAmount())
	}
	select {
	case sum := <-done:
		if string(sum[:]) != string(want.Sum(nil)) {
			t.Fatal("the bytes arrived changed or out of order")
		}
	case <-ctx.Done():
		t.Fatal("not everything arrived")
	}
	t.Logf("one hop: %d MB in %v (%.1f MB/s), peak queue %d KiB", total>>20, time.Since(start), float64(total)/time.Since(start).Seconds()/1e6, peak>>10)
	if peak > marks.High+chunk {
		t.Fatalf("queued %d bytes, more than the %d high-water mark plus one chunk", peak, marks.High)
	}
	if dropped := strings.Count(logs.String(), " is full"); dropped > 0 {
		t.Fatalf("pion dropped %d packets on a full queue:\n%s", dropped, logs.String())
	}
}

// openChannel opens a data channel on pc and waits until it is open.
func openChannel(t *testing.T, pc *webrtc.PeerConnection, label string) *webrtc.DataChannel {
	t.Helper()
	dc, err := pc.CreateDataChannel(label, nil)
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	select {
	case <-opened:
	case <-time.After(20 * time.Second):
		t.Fatal("the channel did not open")
	}
	return dc
}

// syncWriter collects log lines written from several goroutines.
type syncWriter struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestMaxMessage: a message of MaxMessage bytes arrives whole; a larger
// one is refused at the sender, as the peer's SDP asked.
func TestMaxMessage(t *testing.T) {
	a, b := connected(t, nil)
	got := make(chan int, 1)
	b.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) { got <- len(m.Data) })
	})
	dc := openChannel(t, a, "bulk")
	if err := dc.Send(make([]byte, MaxMessage+1)); err == nil {
		t.Error("a message over the limit was sent")
	}
	if err := dc.Send(make([]byte, MaxMessage)); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n != MaxMessage {
			t.Errorf("%d bytes arrived, want %d", n, MaxMessage)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the largest message did not arrive")
	}
}

// TestCloseWhileSending: closing a channel while messages are still being
// sent on it leaves the peer able to take new channels. With pion/sctp
// before v1.12.1 a message queued behind the close reached the peer after
// the stream's reset and started a stream of its own there, on which the
// peer's channel accept loop waited for an opening message forever: every
// later channel (a technician's next file transfer or shell) never opened.
//
// Each round waits until the peer has closed the channel too, which it
// does once the messages queued before the close have arrived. pion/sctp
// interleaves the streams' messages and cannot deliver part of one, so
// dozens of closed channels still draining large messages at once can
// fill the receive window with unfinished messages and stall the
// association for good. The product has far fewer under way at once: one
// file message and up to 8 shell outputs per technician.
func TestCloseWhileSending(t *testing.T) {
	a, b := connected(t, nil)
	opened, closed := make(chan string, 64), make(chan string, 64)
	b.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnOpen(func() { opened <- dc.Label() })
		dc.OnClose(func() { closed <- dc.Label() })
	})
	waitFor := func(events <-chan string, label, what string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l := <-events:
				if l == label {
					return
				}
			case <-timeout:
				t.Fatalf("the peer never %s %q", what, label)
			}
		}
	}
	msg := make([]byte, 64<<10) // fragmented into about 55 packets
	for round := range 40 {
		label := fmt.Sprintf("bulk-%d", round)
		dc := openChannel(t, a, label)
		waitFor(opened, label, "opened")
		f := NewFlow(dc, BulkMarks)
		var senders sync.WaitGroup
		for range 4 {
			senders.Add(1)
			go func() {
				defer senders.Done()
				for f.Send(context.Background(), msg) == nil {
				}
			}()
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		dc.Close()
		senders.Wait()
		waitFor(closed, label, "closed")
	}
	openChannel(t, a, "after")
	waitFor(opened, "after", "opened")
}
