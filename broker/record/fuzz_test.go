package record

import (
	"bytes"
	"errors"
	"io"
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

// FuzzEncryptedPartReads: an encrypted part read a record at a time, from
// anywhere it seeks to, reads what decrypting it whole gives, and fails
// where that fails.
func FuzzEncryptedPartReads(f *testing.F) {
	const name = "video-0001.webm"
	key := bytes.Repeat([]byte{1}, EncryptionKeySize)
	c, _ := newPartCipher(key, name)
	var part []byte
	for _, chunk := range []string{"hello", "", "a record of more words"} {
		part = append(part, c.seal([]byte(chunk))...)
	}
	f.Add(part, uint16(3), uint16(7))
	f.Add(part[:len(part)-3], uint16(0), uint16(100))
	f.Add([]byte{0, 0, 0, 40}, uint16(0), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, at, n uint16) {
		want, werr := decryptPart(key, name, data)
		r, err := openCryptPart(io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data))), key, name)
		var got []byte
		if err == nil {
			got, err = io.ReadAll(r)
		}
		if werr != nil && !errors.Is(werr, errTorn) {
			if err == nil {
				t.Fatalf("read whole it fails (%v); read in pieces it gave %d bytes", werr, len(got))
			}
			return
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read in pieces: %q (%v); whole: %q", got, err, want)
		}
		from := int64(at) % int64(len(want)+1)
		r.Seek(from, io.SeekStart)
		piece := make([]byte, n)
		k, _ := io.ReadFull(r, piece)
		if !bytes.Equal(piece[:k], want[from:min(int64(len(want)), from+int64(n))]) {
			t.Fatalf("%d bytes at %d: %q, want %q", n, from, piece[:k], want[from:])
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
