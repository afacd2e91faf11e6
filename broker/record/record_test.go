package record

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tether-support/tether/internal/protocol"
)

func testKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// vp8Frame returns a frame with a real VP8 frame tag: keyframes carry the
// start code and size that players read.
func vp8Frame(key bool, w, h, size int) []byte {
	f := make([]byte, size)
	for i := range f {
		f[i] = byte(i * 7)
	}
	if key {
		copy(f, []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, byte(w), byte(w >> 8), byte(h), byte(h >> 8)})
	} else {
		f[0] = 0x11
	}
	return f
}

// packetizer splits frames into RTP packets as the host's VP8 payloader does.
type packetizer struct {
	seq uint16
	ts  uint32
}

func (p *packetizer) packets(frame []byte, ts uint32) []*rtp.Packet {
	var out []*rtp.Packet
	for i := 0; i < len(frame); i += 1000 {
		end := min(i+1000, len(frame))
		desc := byte(0x00)
		if i == 0 {
			desc = 0x10 // S bit, partition 0
		}
		p.seq++
		out = append(out, &rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: p.seq, Timestamp: ts, Marker: end == len(frame), SSRC: 42},
			Payload: append([]byte{desc}, frame[i:end]...),
		})
	}
	return out
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recordSample records a small session: video across three segments,
// events, input, clipboard and a shell.
func recordSample(t *testing.T, dir string, key ed25519.PrivateKey) (*Manifest, string) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	r, err := New(Config{Dir: dir, Key: key, Now: clock.Now, SegmentDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var sealed *Manifest
	keyframes := 0
	s, err := r.Start(Info{Session: "s_test1", Ticket: "INC-7", Technician: "lee",
		RequestKeyframe: func() { keyframes++ },
		OnSealed:        func(m *Manifest) { sealed = m }})
	if err != nil {
		t.Fatal(err)
	}
	s.Event("consent.granted", "user", []byte(`{"granted":["view","control"]}`))
	var p packetizer
	for i := range 75 { // 2.5 s at 30 fps; a keyframe every second
		ts := uint32(i * 3000)
		for _, pkt := range p.packets(vp8Frame(i%30 == 0, 640, 480, 2500), ts) {
			s.VideoPacket(pkt)
		}
		if i%10 == 0 {
			s.Input("lee", protocol.InputMove)
			s.Input("lee", protocol.InputKey)
		}
		clock.Add(33 * time.Millisecond)
	}
	s.Control("lee", false, protocol.ControlMessage{Type: protocol.ControlClipboard, Text: "secret text"})
	s.ShellOpened("shell-1", "v_lee", 80, 24)
	s.ShellData("shell-1", false, []byte("ls\r"))
	s.ShellData("shell-1", true, []byte("ls\r\nfile-\xc3"))
	s.ShellData("shell-1", true, []byte("\xa9.txt\r\n$ "))
	s.ShellResized("shell-1", 100, 30)
	s.ShellClosed("shell-1")
	s.Event("session.ended", "broker", []byte(`{"reason":"done"}`))
	if err := s.Finish("The technician ended the session."); err != nil {
		t.Fatal(err)
	}
	if sealed == nil {
		t.Fatal("OnSealed was not called")
	}
	return sealed, s.Dir()
}

func TestRecordAndVerify(t *testing.T) {
	key := testKey(t)
	m, dir := recordSample(t, t.TempDir(), key)
	if m.State != StateComplete {
		t.Fatalf("state %q", m.State)
	}
	var kinds = map[string]int{}
	for _, p := range m.Parts {
		kinds[p.Kind]++
	}
	if kinds[KindVideo] != 3 || kinds[KindEvents] != 1 || kinds[KindShell] != 1 {
		t.Fatalf("parts by kind %v, want 3 video, 1 events, 1 shell", kinds)
	}
	if m.Video.Relayed != 75 || m.Video.Written != 75 {
		t.Errorf("frames relayed %d, written %d; want 75 each", m.Video.Relayed, m.Video.Written)
	}
	for _, p := range m.Parts {
		if p.Kind == KindVideo && p.Frames == 0 {
			t.Errorf("segment %s has no frames", p.Name)
		}
	}
	rep, err := Verify(dir, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || !rep.TrustedKey {
		t.Fatalf("verify failed: %v", rep.Problems)
	}

	// The event log has what the timeline needs, and no clipboard content,
	// nor its hash, which would let a copied password be found.
	data, _ := os.ReadFile(filepath.Join(dir, EventsFile))
	sum := sha256.Sum256([]byte("secret text"))
	if bytes.Contains(data, []byte("secret text")) || bytes.Contains(data, []byte(hex.EncodeToString(sum[:]))) {
		t.Error("clipboard content or its hash was written to events.jsonl")
	}
	events := archiveEvents(t, dir)
	types := map[string]bool{}
	var lastT int64
	for _, e := range events {
		types[e.Type] = true
		if e.T < lastT {
			t.Errorf("event %d (%s) goes back in time: %d < %d", e.Seq, e.Type, e.T, lastT)
		}
		lastT = e.T
	}
	for _, want := range []string{"recording.started", "consent.granted", "input", "clipboard", "session.ended", "recording.finished"} {
		if !types[want] {
			t.Errorf("no %s event in %v", want, types)
		}
	}
}

func TestCastTranscript(t *testing.T) {
	_, dir := recordSample(t, t.TempDir(), testKey(t))
	data, err := os.ReadFile(filepath.Join(dir, "shell-1.cast"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var hdr castHeader
	if err := json.Unmarshal([]byte(lines[0]), &hdr); err != nil || hdr.Version != 2 || hdr.Width != 80 || hdr.Height != 24 {
		t.Fatalf("header %q: %+v %v", lines[0], hdr, err)
	}
	var out strings.Builder
	var codes []string
	for _, l := range lines[1:] {
		var ev []any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("event line %q: %v", l, err)
		}
		codes = append(codes, ev[1].(string))
		if ev[1] == "o" {
			out.WriteString(ev[2].(string))
		}
		if ev[1] == "r" && ev[2] != "100x30" {
			t.Errorf("resize event %v", ev)
		}
	}
	// The é split across two reads is one character, not two replacements.
	if got := out.String(); got != "ls\r\nfile-é.txt\r\n$ " {
		t.Errorf("output %q", got)
	}
	// Input is not recorded by default.
	if strings.Contains(strings.Join(codes, ","), "i") {
		t.Errorf("input recorded without the policy: %v", codes)
	}
}

// TestVideoDuringFinish: the host keeps sending while the session ends;
// every frame the archive counts as relayed is in it, or counted as
// dropped when the writer fell behind (each frame here is one packet).
func TestVideoDuringFinish(t *testing.T) {
	r, err := New(Config{Dir: t.TempDir(), Key: testKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	for n := range 20 {
		var sealed *Manifest
		s, err := r.Start(Info{Session: fmt.Sprintf("s_end%d", n), RequestKeyframe: func() {}, OnSealed: func(m *Manifest) { sealed = m }})
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		fed := make(chan struct{})
		go func() {
			defer close(fed)
			var p packetizer
			for i := 0; ; i++ {
				for _, pkt := range p.packets(vp8Frame(i == 0, 320, 240, 300), uint32(i*3000)) {
					s.VideoPacket(pkt)
				}
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Microsecond):
				}
			}
		}()
		time.Sleep(time.Duration(n%5) * time.Millisecond)
		if err := s.Finish("ended"); err != nil {
			t.Fatal(err)
		}
		close(stop)
		<-fed
		if v := sealed.Video; v.Relayed != v.Written+v.QueueOverflow {
			t.Fatalf("session %d: %d frames relayed, %d written (%+v)", n, v.Relayed, v.Written, v)
		}
	}
}

func TestVerifyNamesTamperedPart(t *testing.T) {
	key := testKey(t)
	pub := key.Public().(ed25519.PublicKey)
	_, orig := recordSample(t, t.TempDir(), key)
	for _, name := range []string{"video-0002.webm", EventsFile, "shell-1.cast", ManifestFile, SignatureFile} {
		t.Run(name, func(t *testing.T) {
			dir := copyDir(t, orig)
			path := filepath.Join(dir, name)
			data, _ := os.ReadFile(path)
			data[len(data)/2] ^= 0x01
			os.WriteFile(path, data, 0o600)
			rep, err := Verify(dir, pub)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("a flipped byte in %s was not caught", name)
			}
			named := false
			for _, p := range rep.Problems {
				named = named || p.Part == name || (name == SignatureFile && p.Part == ManifestFile)
			}
			if !named {
				t.Errorf("problems do not name %s: %v", name, rep.Problems)
			}
		})
	}
	t.Run("removed event line", func(t *testing.T) {
		dir := copyDir(t, orig)
		path := filepath.Join(dir, EventsFile)
		data, _ := os.ReadFile(path)
		lines := bytes.SplitAfter(data, []byte("\n"))
		os.WriteFile(path, bytes.Join(append(lines[:2:2], lines[3:]...), nil), 0o600)
		rep, _ := Verify(dir, pub)
		if rep.OK() || !strings.Contains(rep.Problems[0].String(), EventsFile) {
			t.Fatalf("removed line not caught: %v", rep.Problems)
		}
	})
	t.Run("missing segment", func(t *testing.T) {
		dir := copyDir(t, orig)
		os.Remove(filepath.Join(dir, "video-0001.webm"))
		rep, _ := Verify(dir, pub)
		if rep.OK() || rep.Problems[0].Part != "video-0001.webm" {
			t.Fatalf("missing segment not caught: %v", rep.Problems)
		}
	})
	t.Run("added file", func(t *testing.T) {
		dir := copyDir(t, orig)
		os.WriteFile(filepath.Join(dir, "extra.cast"), []byte("{}\n"), 0o600)
		rep, _ := Verify(dir, pub)
		if rep.OK() || rep.Problems[0].Part != "extra.cast" {
			t.Fatalf("added file not caught: %v", rep.Problems)
		}
	})
	t.Run("other key", func(t *testing.T) {
		rep, _ := Verify(orig, testKey(t).Public().(ed25519.PublicKey))
		if rep.OK() || !strings.Contains(rep.Problems[0].Message, "not the trusted key") {
			t.Fatalf("foreign key not caught: %v", rep.Problems)
		}
	})
}

// TestEveryFlippedByteIsCaught flips bytes all through every file of an
// archive (every 61st byte, and the first and last of each).
func TestEveryFlippedByteIsCaught(t *testing.T) {
	key := testKey(t)
	pub := key.Public().(ed25519.PublicKey)
	_, orig := recordSample(t, t.TempDir(), key)
	entries, _ := os.ReadDir(orig)
	dir := copyDir(t, orig)
	checked := 0
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		data, _ := os.ReadFile(path)
		for i := 0; i < len(data); i++ {
			if i%61 != 0 && i != len(data)-1 {
				continue
			}
			data[i] ^= 0x20
			os.WriteFile(path, data, 0o600)
			rep, err := Verify(dir, pub)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("flipped byte %d of %s not caught", i, e.Name())
			}
			data[i] ^= 0x20
			checked++
		}
		os.WriteFile(path, data, 0o600)
	}
	if rep, _ := Verify(dir, pub); !rep.OK() {
		t.Fatalf("restored archive does not verify: %v", rep.Problems)
	}
	t.Logf("%d flipped bytes caught", checked)
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	os.Mkdir(dst, 0o700)
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // renamed while the copy ran, as in a crash
		}
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, e.Name()), data, 0o600)
	}
	return dst
}

func TestStartRefusesBadSessionIDs(t *testing.T) {
	r, err := New(Config{Dir: t.TempDir(), Key: testKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "..", "../x", "a/b", strings.Repeat("a", 65)} {
		if _, err := r.Start(Info{Session: id}); err == nil {
			t.Errorf("session id %q accepted", id)
		}
	}
}

func TestKeyCreatedOnceAndPrivate(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("a second start made a new key")
	}
	st, _ := os.Stat(filepath.Join(dir, KeyFile))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", st.Mode().Perm())
	}
	pubPEM, _ := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	pub, err := ParsePublicKey(pubPEM)
	if err != nil || !pub.Equal(k1.Public()) {
		t.Fatalf("public key file: %v", err)
	}
	// The private key given where the public one goes (its seed is as long)
	// is named for what it is, not taken for another signer.
	privPEM, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	if _, err := ParsePublicKey(privPEM); err == nil || !strings.Contains(err.Error(), "private signing key") {
		t.Errorf("the private key read as a public key: %v", err)
	}
	os.WriteFile(filepath.Join(dir, KeyFile), []byte("garbage"), 0o600)
	if _, err := LoadOrCreateKey(dir); err == nil {
		t.Fatal("a damaged key was accepted")
	}
}

// TestCheckpointSealsWhatIsNew: the archive is sealed every segment's
// length when an event came since the last seal, and not rewritten when
// nothing did.
func TestCheckpointSealsWhatIsNew(t *testing.T) {
	r, err := New(Config{Dir: t.TempDir(), Key: testKey(t), SegmentDuration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Start(Info{Session: "s_quiet"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Finish("done")
	first, _, err := ReadManifest(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if m, _, _ := ReadManifest(s.Dir()); !m.SealedAt.Equal(first.SealedAt) {
		t.Errorf("sealed again at %v with nothing new since %v", m.SealedAt, first.SealedAt)
	}
	s.Event("consent.changed", "user", []byte(`{"granted":["view"]}`))
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, _, err := ReadManifest(s.Dir())
		if err == nil && m.Counts["consent.changed"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an event was not sealed within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCrashChild is the broker side of TestKillMidSession: run on its own
// it does nothing.
func TestCrashChild(t *testing.T) {
	root := os.Getenv("RECORD_CRASH_DIR")
	if root == "" {
		t.Skip("run by TestKillMidSession")
	}
	seed, _ := os.ReadFile(filepath.Join(root, "key"))
	r, _ := New(Config{Dir: filepath.Join(root, "rec"), Key: ed25519.NewKeyFromSeed(seed), SegmentDuration: 200 * time.Millisecond})
	s, err := r.Start(Info{Session: "s_crash"})
	if err != nil {
		t.Fatal(err)
	}
	var p packetizer
	for i := 0; ; i++ {
		for _, pkt := range p.packets(vp8Frame(i%6 == 0, 320, 240, 1500), uint32(i*3000)) {
			s.VideoPacket(pkt)
		}
		s.Input("lee", protocol.InputMove)
		if i%10 == 0 {
			s.Event("consent.changed", "user", []byte(`{"n":1}`))
		}
		if i == 30 {
			os.Stdout.WriteString("recording\n")
		}
		time.Sleep(33 * time.Millisecond)
	}
}

// TestKillMidSession kills a recording process with SIGKILL mid-session:
// after recovery the archive is marked incomplete, keeps its sealed video,
// and verifies.
func TestKillMidSession(t *testing.T) {
	key := testKey(t)
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "key"), key.Seed(), 0o600)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), "RECORD_CRASH_DIR="+root)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	br := bufio.NewReader(out)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("child ended before recording: %v", err)
		}
		if line == "recording\n" {
			break
		}
	}
	time.Sleep(time.Second + time.Duration(time.Now().UnixNano()%300)*time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	// The broker comes back forty days later.
	later := time.Now().Add(40 * 24 * time.Hour)
	r2, _ := New(Config{Dir: filepath.Join(root, "rec"), Key: key, Now: func() time.Time { return later }})
	ms, err := r2.Recover(neverReplaced)
	if err != nil || len(ms) != 1 || ms[0].State != StateIncomplete {
		t.Fatalf("recover: %v %v", ms, err)
	}
	videos := 0
	for _, p := range ms[0].Parts {
		if p.Kind == KindVideo {
			videos++
		}
	}
	if videos < 3 {
		t.Errorf("only %d sealed segments survived about 2 s of recording", videos)
	}
	rep, _ := Verify(filepath.Join(root, "rec", "s_crash"), key.Public().(ed25519.PublicKey))
	if !rep.OK() {
		t.Fatalf("recovered archive does not verify: %v", rep.Problems)
	}
	if rep.State != StateIncomplete || len(rep.Warnings) == 0 {
		t.Errorf("state %s, warnings %v", rep.State, rep.Warnings)
	}
	if again, _ := r2.Recover(neverReplaced); len(again) != 0 {
		t.Errorf("recovered twice: %v", again)
	}
	// Thirty days' retention counts from what the archive holds, not
	// from the restart.
	if old, err := r2.Expired(later.Add(-30 * 24 * time.Hour)); err != nil || len(old) != 1 {
		t.Errorf("archives past 30 days' retention after the late restart: %v %v; want the recovered one", old, err)
	}
}

// TestDiskFull records onto a tiny tmpfs until it fills: the recording
// reports the failure once, with the cause, finishes as failed, and what
// was sealed before still verifies.
func TestDiskFull(t *testing.T) {
	mnt := smallDisk(t, "256k")
	key := testKey(t)
	r, err := New(Config{Dir: mnt, Key: key, SegmentDuration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 2)
	var sealed *Manifest
	s, err := r.Start(Info{Session: "s_full", OnFailure: func(err error) { failed <- err }, OnSealed: func(m *Manifest) { sealed = m }})
	if err != nil {
		t.Fatal(err)
	}
	var p packetizer
	var got error
	for i := 0; got == nil && i < 2000; i++ {
		for _, pkt := range p.packets(vp8Frame(i%10 == 0, 640, 480, 4000), uint32(i*3000)) {
			s.VideoPacket(pkt)
		}
		select {
		case got = <-failed:
		case <-time.After(2 * time.Millisecond):
		}
	}
	if got == nil {
		t.Fatal("a full disk was not reported")
	}
	if !errors.Is(got, syscall.ENOSPC) {
		t.Errorf("failure %v does not say the disk is full", got)
	}
	s.Finish("disk full")
	if !errors.Is(s.Err(), syscall.ENOSPC) {
		t.Errorf("Err() = %v", s.Err())
	}
	select {
	case err := <-failed:
		t.Errorf("failure reported twice: %v", err)
	default:
	}
	if sealed == nil || sealed.State != StateFailed || !strings.Contains(sealed.Note, "no space left") {
		t.Errorf("reported as finished: %+v; want failed, saying why", sealed)
	}
	if sealed != nil && strings.Contains(sealed.Note, mnt) {
		t.Errorf("the note, shown to supervisors, names the server's path: %q", sealed.Note)
	}
	rep, err := r.Verify("s_full", "")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("what was sealed before the disk filled does not verify: %v", rep.Problems)
	}
}

// TestFailedEventWriteVerifies: an event line the file system takes only
// part of stops the recording, and the archive is sealed as failed and
// verifies: the lines before the failure are intact, not altered. The
// file size limit refuses the line while the small manifest can still be
// written, as a full disk does when room comes back in between.
func TestFailedEventWriteVerifies(t *testing.T) {
	key := testKey(t)
	r, err := New(Config{Dir: t.TempDir(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	var sealed *Manifest
	s, err := r.Start(Info{Session: "s_torn", OnFailure: func(err error) { failed <- err }, OnSealed: func(m *Manifest) { sealed = m }})
	if err != nil {
		t.Fatal(err)
	}
	s.Event("consent.granted", "user", []byte(`{"granted":["view"]}`))

	restore := limitFileSize(t, 64<<10)
	defer restore()
	s.Event("chat.message", "lee", []byte(fmt.Sprintf(`{"text":%q}`, strings.Repeat("x", 100<<10))))
	select {
	case err := <-failed:
		t.Logf("failure: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the failed write was not reported")
	}
	s.Finish("The technician ended the session.")

	rep, err := r.Verify("s_torn", "")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.State != StateFailed || rep.EventLines != 2 {
		t.Fatalf("verify: state %s, %d event lines, problems %v; want failed, the 2 lines written before, no problem", rep.State, rep.EventLines, rep.Problems)
	}
	if sealed == nil || sealed.State != StateFailed || !strings.Contains(sealed.Note, "write event log") {
		t.Errorf("reported as finished: %+v; want failed, saying why", sealed)
	}
}

// TestFinalSealFails: an archive whose manifest cannot be written as the
// session ends (refused by the file size limit here, as by a full disk:
// many segments make it the largest file) fails, and is reported
// finished as failed, with why, not left recording.
func TestFinalSealFails(t *testing.T) {
	r, err := New(Config{Dir: t.TempDir(), Key: testKey(t), SegmentDuration: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	var sealed *Manifest
	s, err := r.Start(Info{Session: "s_last", OnFailure: func(err error) { failed <- err }, OnSealed: func(m *Manifest) { sealed = m }})
	if err != nil {
		t.Fatal(err)
	}
	var p packetizer
	for i := range 60 { // a segment per keyframe
		for _, pkt := range p.packets(vp8Frame(true, 64, 48, 200), uint32(i*3000)) {
			s.VideoPacket(pkt)
		}
	}
	// Every segment but the last sealed, with room for each.
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, _, err := ReadManifest(s.Dir())
		if err == nil && len(m.Parts) == 60 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("59 segments were not sealed within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	restore := limitFileSize(t, 8<<10)
	defer restore()
	if err := s.Finish("The technician ended the session."); err == nil {
		t.Fatal("the final seal did not fail")
	}
	select {
	case err := <-failed:
		t.Logf("failure: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the failed seal was not reported")
	}
	if sealed == nil || sealed.State != StateFailed || !strings.Contains(sealed.Note, "manifest") {
		t.Errorf("reported as finished: %+v; want failed, saying why", sealed)
	}
}

func TestUnwritableArchiveFails(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; the disk-full test covers write failures")
	}
	root := t.TempDir()
	r, err := New(Config{Dir: root, Key: testKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(root, 0o500)
	defer os.Chmod(root, 0o700)
	if _, err := r.Start(Info{Session: "s_x"}); err == nil || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("start in a read-only directory: %v", err)
	}
}

// encryptedArchive records a short session with an encryption key: a
// consent, video and a shell. It returns the recorder, the archive and
// the encryption key.
func encryptedArchive(t *testing.T, session string) (*Recorder, string, []byte) {
	t.Helper()
	return encryptedArchiveOf(t, session, 1800)
}

// encryptedArchiveOf records as encryptedArchive does, with video frames
// of frameBytes each (40 frames, 30 a second).
func encryptedArchiveOf(t *testing.T, session string, frameBytes int) (*Recorder, string, []byte) {
	t.Helper()
	key := testKey(t)
	enc := bytes.Repeat([]byte{7}, EncryptionKeySize)
	r, err := New(Config{Dir: t.TempDir(), Key: key, EncryptionKey: enc, SegmentDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Start(Info{Session: session})
	if err != nil {
		t.Fatal(err)
	}
	s.Event("consent.granted", "user", []byte(`{"granted":["view"]}`))
	var p packetizer
	for i := range 40 {
		for _, pkt := range p.packets(vp8Frame(i%30 == 0, 320, 240, frameBytes), uint32(i*3000)) {
			s.VideoPacket(pkt)
		}
		// A frame's packets in a burst, as over a link: a frame far larger
		// than the writer's queue, sent at once, would lose packets there.
		time.Sleep(5 * time.Millisecond)
	}
	s.ShellOpened("shell-1", "v1", 80, 24)
	s.ShellData("shell-1", true, []byte("$ whoami\r\nroot\r\n"))
	if err := s.Finish("done"); err != nil {
		t.Fatal(err)
	}
	return r, s.Dir(), enc
}

// TestEncryptedArchive: with a key, nothing readable is on disk, the
// signature and hashes verify without the key, the chain with it, and the
// parts read back through the key.
func TestEncryptedArchive(t *testing.T) {
	r, dir, enc := encryptedArchive(t, "s_enc")
	pub := r.PublicKey()
	for _, name := range []string{EventsFile, "shell-1.cast", "video-0001.webm"} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		for _, plain := range []string{"consent.granted", "whoami", "webm", "V_VP8"} {
			if bytes.Contains(data, []byte(plain)) {
				t.Errorf("%s holds %q in the clear", name, plain)
			}
		}
	}
	rep, _ := Verify(dir, pub)
	if !rep.OK() || len(rep.Warnings) == 0 {
		t.Fatalf("verify without the key: %v, warnings %v", rep.Problems, rep.Warnings)
	}
	rep, _ = VerifyWith(dir, pub, enc)
	if !rep.OK() || rep.EventLines < 3 {
		t.Fatalf("verify with the key: %v, %d lines", rep.Problems, rep.EventLines)
	}
	m, _, _ := ReadManifest(dir)
	if !m.Encrypted {
		t.Error("the manifest does not say the archive is encrypted")
	}
	events, err := readPart(dir, m, EventsFile, enc)
	if err != nil || !bytes.Contains(events, []byte(`"type":"consent.granted"`)) {
		t.Fatalf("read events: %v\n%s", err, events)
	}
	video, err := readPart(dir, m, "video-0001.webm", enc)
	if err != nil || !bytes.HasPrefix(video, []byte{0x1a, 0x45, 0xdf, 0xa3}) {
		t.Fatalf("decrypted segment is not WebM: %v", err)
	}
	if _, err := readPart(dir, m, EventsFile, nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("read without the key: %v", err)
	}
	if _, err := readPart(dir, m, EventsFile, bytes.Repeat([]byte{8}, EncryptionKeySize)); err == nil {
		t.Error("read with a wrong key succeeded")
	}
	// A flipped byte is caught by the hash, and by decryption.
	path := filepath.Join(dir, EventsFile)
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 1
	os.WriteFile(path, data, 0o600)
	if rep, _ := VerifyWith(dir, pub, enc); rep.OK() {
		t.Error("a flipped byte in an encrypted part was not caught")
	}
}

func TestLoadEncryptionKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), mode)
		os.Chmod(p, mode)
		return p
	}
	hexKey := strings.Repeat("ab", 32)
	if k, err := LoadEncryptionKey(write("hex", hexKey+"\n", 0o600)); err != nil || len(k) != 32 {
		t.Errorf("hex key: %v", err)
	}
	for name, c := range map[string]struct {
		content string
		mode    os.FileMode
		want    string
	}{
		"short":    {"abcd", 0o600, "32 bytes"},
		"readable": {hexKey, 0o644, "chmod 600"},
	} {
		if _, err := LoadEncryptionKey(write(name, c.content, c.mode)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}

// TestCheckEncryptionKey: the start-up check counts the encrypted archives
// a broker cannot read, without its key or with another one.
func TestCheckEncryptionKey(t *testing.T) {
	_, dir, enc := encryptedArchive(t, "s_chk")
	root := filepath.Dir(dir)
	for _, c := range []struct {
		what string
		key  []byte
		want KeyCheck
	}{
		{"no key", nil, KeyCheck{Encrypted: 1, Unreadable: 1}},
		{"its key", enc, KeyCheck{Encrypted: 1}},
		{"another key", bytes.Repeat([]byte{8}, EncryptionKeySize), KeyCheck{Encrypted: 1, Unreadable: 1}},
	} {
		if got, err := CheckEncryptionKey(root, c.key); err != nil || got != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.what, got, err, c.want)
		}
	}
	if got, err := CheckEncryptionKey(filepath.Join(root, "none"), nil); err != nil || got != (KeyCheck{}) {
		t.Errorf("no recordings yet: %+v %v", got, err)
	}
}

// readOnlyDir is a read-only mount, which stops root too.
func readOnlyDir(t *testing.T) string {
	t.Helper()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a read-only tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	return mnt
}

// A recordings directory the broker cannot write in (a read-only mount, a
// directory of another owner) is found when the recorder is made, not when
// the first user's host joins.
func TestReadOnlyRecordingsDir(t *testing.T) {
	for _, dir := range []string{readOnlyDir(t), filepath.Join(readOnlyDir(t), "recordings")} {
		_, err := New(Config{Dir: dir, Key: testKey(t)})
		if !errors.Is(err, syscall.EROFS) {
			t.Fatalf("recorder in %s: %v, want it refused as read-only", dir, err)
		}
		want := "session recordings cannot be written in " + dir + ", and no session can start while it cannot be recorded"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q, want it to say %q", err, want)
		}
	}
}

// TestRetentionDeletesTheExpiredDirectory: an archive kept under another
// directory than its session's (a copy restored beside the original) is
// deleted by retention as the directory it is, not by the session its
// manifest names: neither the original twice, nor the copy never.
func TestRetentionDeletesTheExpiredDirectory(t *testing.T) {
	key := testKey(t)
	root := t.TempDir()
	_, dir := recordSample(t, root, key)
	if err := os.Rename(copyDir(t, dir), filepath.Join(root, "s_restored")); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Dir: root, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := r.Expired(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var sessions []string
	for _, m := range expired {
		sessions = append(sessions, m.Session)
		if err := r.Delete(m.Session); err != nil {
			t.Fatal(err)
		}
	}
	left, _ := os.ReadDir(root)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if len(names) != 0 {
		t.Errorf("expired %v; left behind %v", sessions, names)
	}
}

// TestTranscriptWriteFailureVerifiesAndPlays: terminal output the file
// system takes only part of (a full disk) stops the recording; the
// archive is sealed as failed, verifies, and its transcript still plays:
// the torn line is not part of what the seal covers.
func TestTranscriptWriteFailureVerifiesAndPlays(t *testing.T) {
	key := testKey(t)
	r, err := New(Config{Dir: t.TempDir(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	s, err := r.Start(Info{Session: "s_shell", OnFailure: func(err error) { failed <- err }})
	if err != nil {
		t.Fatal(err)
	}
	s.ShellOpened("shell-1", "v_lee", 80, 24)
	s.ShellData("shell-1", true, []byte("$ ls\r\n"))

	restore := limitFileSize(t, 64<<10)
	defer restore()
	s.ShellData("shell-1", true, bytes.Repeat([]byte("output "), 20<<10))
	select {
	case err := <-failed:
		t.Logf("failure: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the failed write was not reported")
	}
	s.Finish("The technician ended the session.")
	restore()

	rep, err := r.Verify("s_shell", "")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.State != StateFailed {
		t.Fatalf("verify: state %s, problems %v", rep.State, rep.Problems)
	}
	m, _, err := ReadManifest(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := readPart(s.Dir(), m, "shell-1.cast", nil)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	if last := lines[len(lines)-1]; last != "" {
		t.Errorf("the sealed transcript ends in a torn line of %d bytes", len(last))
	}
	for i, l := range lines[:len(lines)-1] {
		if !json.Valid([]byte(l)) {
			t.Errorf("line %d of the sealed transcript is not JSON: %.40q", i+1, l)
		}
	}
}

// TestFailedRecordingClosesItsFiles: a recording that failed leaves no
// file of its archive open once it is finished.
func TestFailedRecordingClosesItsFiles(t *testing.T) {
	r, err := New(Config{Dir: t.TempDir(), Key: testKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	s, err := r.Start(Info{Session: "s_open", OnFailure: func(err error) { failed <- err }})
	if err != nil {
		t.Fatal(err)
	}
	s.ShellOpened("shell-1", "v_lee", 80, 24)
	s.ShellOpened("shell-2", "v_lee", 80, 24)
	s.ShellData("shell-2", true, []byte("$ "))

	restore := limitFileSize(t, 8<<10)
	defer restore()
	s.Event("chat.message", "lee", []byte(fmt.Sprintf(`{"text":%q}`, strings.Repeat("x", 16<<10))))
	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("the failed write was not reported")
	}
	s.Finish("The technician ended the session.")

	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list open files: %v", err)
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, s.Dir()) {
			t.Errorf("%s is still open", target)
		}
	}
}

// TestDiskFullArchiveSaysFailed: the archive of a recording stopped by a
// full disk says so on disk, not that it is still being recorded: verify
// reports it failed, with why, and retention can delete it, without
// waiting for a restart of the broker to call it incomplete.
func TestDiskFullArchiveSaysFailed(t *testing.T) {
	for run := range 5 {
		mnt := smallDisk(t, "256k")
		key := testKey(t)
		r, err := New(Config{Dir: mnt, Key: key, SegmentDuration: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		failed := make(chan error, 1)
		s, err := r.Start(Info{Session: "s_full", OnFailure: func(err error) { failed <- err }})
		if err != nil {
			t.Fatal(err)
		}
		var p packetizer
		size := 3000 + run*700 // the disk fills at another point each run
		for i := 0; i < 2000 && len(failed) == 0; i++ {
			for _, pkt := range p.packets(vp8Frame(i%10 == 0, 640, 480, size), uint32(i*3000)) {
				s.VideoPacket(pkt)
			}
			time.Sleep(time.Millisecond)
		}
		s.Finish("The technician ended the session.")
		if s.Err() == nil {
			t.Fatal("a full disk was not reported")
		}
		rep, err := r.Verify("s_full", "")
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.State != StateFailed {
			t.Errorf("run %d (%v): verify says state %s, problems %v; want failed, no problem", run, s.Err(), rep.State, rep.Problems)
		}
		if old, _ := r.Expired(time.Now().Add(time.Hour)); len(old) != 1 {
			t.Errorf("run %d: retention finds %d archives to delete, want the failed one", run, len(old))
		}
	}
}

// limitFileSize makes a write past n bytes into any file fail, as a full
// disk would, until restore (which the test also defers).
func limitFileSize(t *testing.T, n uint64) (restore func()) {
	t.Helper()
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	small := limit
	small.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &small); err != nil {
		t.Skipf("cannot limit the file size: %v", err)
	}
	return func() { syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit) }
}

// smallDisk mounts a tmpfs of size (as mount takes it: "256k") to fill,
// until the test ends.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	return mnt
}

// TestKeyOnFullDisk: a first start on a full disk fails with the cause,
// and the start after room was made creates the key; it is not refused
// for an empty key file the failed start left behind.
func TestKeyOnFullDisk(t *testing.T) {
	mnt := smallDisk(t, "64k")
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	f.Close()
	if _, err := LoadOrCreateKey(mnt); err == nil || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("first start on a full disk: %v", err)
	}
	os.Remove(filler)
	key, err := LoadOrCreateKey(mnt)
	if err != nil {
		t.Fatalf("start once there is room: %v", err)
	}
	again, err := LoadOrCreateKey(mnt)
	if err != nil || !again.Equal(key) {
		t.Fatalf("the key read back: %v", err)
	}
}

// TestInputOnTheTimeline: a second's input summary is placed on the
// timeline where its input began, not where the summary was written (the
// next second's tick, or later).
func TestInputOnTheTimeline(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 29, 10, 0, 0, 500_000_000, time.UTC)}
	r, err := New(Config{Dir: t.TempDir(), Key: testKey(t), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Start(Info{Session: "s_input"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(100 * time.Millisecond)
	s.Input("lee", protocol.InputButton) // at t=100 ms
	clock.Add(1300 * time.Millisecond)
	time.Sleep(1200 * time.Millisecond) // the writer's tick writes the summary
	if err := s.Finish("done"); err != nil {
		t.Fatal(err)
	}
	events := archiveEvents(t, s.Dir())
	found := false
	for _, e := range events {
		if e.Type == "input" {
			found = true
			if e.T != 100 {
				t.Errorf("a click at t=100 ms is on the timeline at t=%d ms", e.T)
			}
		}
	}
	if !found {
		t.Fatal("no input event")
	}
}

// TestLostEventsAreMarked: events and terminal output the writer could not
// take in time (its disk stalled) are missing from the archive, and the
// archive says so: counted in the manifest, a recording.gap event where
// they went missing, a warning from verify.
func TestLostEventsAreMarked(t *testing.T) {
	r, err := New(Config{Dir: t.TempDir(), Key: testKey(t), QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	stall := make(chan struct{})
	var once sync.Once
	s, err := r.Start(Info{Session: "s_gap", RequestKeyframe: func() {
		once.Do(func() { <-stall }) // the writer is held up, as by a long fsync
	}})
	if err != nil {
		t.Fatal(err)
	}
	var p packetizer
	for _, pkt := range p.packets(vp8Frame(false, 320, 240, 500), 0) { // no keyframe yet: the writer asks for one
		s.VideoPacket(pkt)
	}
	time.Sleep(100 * time.Millisecond)
	s.ShellOpened("shell-1", "v_a", 80, 24)
	for i := range 4 {
		s.ShellData("shell-1", true, fmt.Appendf(nil, "line %d\r\n", i))
	}
	close(stall)
	if err := s.Finish("done"); err != nil {
		t.Fatal(err)
	}
	m, _, err := ReadManifest(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if m.EventsLost == 0 || m.Counts["recording.gap"] != 1 {
		t.Fatalf("manifest: %d events lost, counts %v; want the loss counted and one recording.gap", m.EventsLost, m.Counts)
	}
	events := archiveEvents(t, s.Dir())
	for _, e := range events {
		if e.Type == "recording.gap" && !strings.Contains(string(e.Detail), fmt.Sprintf(`"events_lost":%d`, m.EventsLost)) {
			t.Errorf("recording.gap %s; want events_lost %d", e.Detail, m.EventsLost)
		}
	}
	rep, err := Verify(s.Dir(), r.PublicKey())
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	warned := false
	for _, w := range rep.Warnings {
		warned = warned || strings.Contains(w.String(), "could not be written in time")
	}
	if !warned {
		t.Errorf("verify says nothing of the loss: %+v", rep.Warnings)
	}
}

// archiveEvents reads the event log of the archive in dir.
func archiveEvents(t *testing.T, dir string) []Event {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, EventsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, err := ReadEvents(f, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return events
}
