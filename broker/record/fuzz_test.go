package record

import (
	"bytes"
	"testing"
	"time"

	"github.com/tether-support/tether/internal/rtc/rtctest"
)

// FuzzCheckChain: any bytes as events.jsonl are checked without panic, and
// a log the chain accepts reads back as that many events.
func FuzzCheckChain(f *testing.F) {
	l := &eventLog{head: genesis("s_f")}
	var buf bytes.Buffer
	for _, typ := range []string{"recording.started", "consent.granted", "input"} {
		buf.Write(l.encode(Event{Type: typ}))
	}
	f.Add(buf.Bytes())
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"seq":1,"prev":"x"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res := CheckChain(bytes.NewReader(data), "s_f")
		if res.Err == nil && !res.Partial {
			events, err := ReadEvents(bytes.NewReader(data), 1<<20)
			if err != nil || int64(len(events)) != res.Lines {
				t.Fatalf("chain accepted %d lines, read %d (%v)", res.Lines, len(events), err)
			}
		}
	})
}

// FuzzDecryptPart: any bytes as an encrypted part fail cleanly.
func FuzzDecryptPart(f *testing.F) {
	key := bytes.Repeat([]byte{1}, EncryptionKeySize)
	c, _ := newPartCipher(key, EventsFile)
	f.Add(c.seal([]byte("hello\n")))
	f.Add([]byte{0, 0, 0, 40})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		plain, err := decryptPart(key, EventsFile, data)
		if err == nil && len(plain) > len(data) {
			t.Fatalf("%d plaintext bytes from %d", len(plain), len(data))
		}
	})
}

// FuzzFrameAssembler: packets in any order, repeated or missing, from a
// host that may send anything, never make the recorder's frame assembly
// panic, hold more than it may, or make a frame of more bytes than came.
func FuzzFrameAssembler(f *testing.F) {
	for _, seed := range rtctest.VP8PacketSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a frameAssembler
		now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
		came := 0
		for i, pkt := range rtctest.VP8Packets(data) {
			came += len(pkt.Payload) - 1
			a.push(pkt, now)
			for {
				frame, _, _, _ := a.next(now, i%7 == 6)
				if frame == nil {
					break
				}
				if frame.size() > came {
					t.Fatalf("a frame of %d bytes from %d bytes of payload", frame.size(), came)
				}
			}
			if len(a.waiting) > maxWaitingPackets {
				t.Fatalf("%d packets waiting; the limit is %d", len(a.waiting), maxWaitingPackets)
			}
			now = now.Add(300 * time.Millisecond)
		}
	})
}
