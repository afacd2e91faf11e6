package record

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/internal/protocol"
)

// forgeEvent appends to an event log a line that chains to its last one,
// as anyone who can write the recordings folder can: the chain is plain
// SHA-256. It returns the line's number.
func forgeEvent(t *testing.T, path, session, typ, detail string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	res := CheckChain(bytes.NewReader(data), session)
	if res.Err != nil || res.Partial {
		t.Fatalf("the log to forge on is not a clean chain: %+v", res)
	}
	line, _ := json.Marshal(Event{Seq: res.Lines + 1, At: time.Now().UTC(), Type: typ, Actor: "user", Detail: json.RawMessage(detail), Prev: res.Head})
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); CheckChain(bytes.NewReader(again), session).Lines != res.Lines+1 {
		t.Fatal("the forged line does not chain")
	}
	return res.Lines + 1
}

// leftIncomplete records a session and leaves its archive as a broker that
// stopped mid-session does once restarted: sealed, incomplete.
func leftIncomplete(t *testing.T, key ed25519.PrivateKey) (*Recorder, string) {
	t.Helper()
	root := t.TempDir()
	_, dir := recordSample(t, root, key)
	// The manifest a broker leaves when it stops while recording.
	m, _, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.State, m.EndedAt, m.Note = StateRecording, time.Time{}, ""
	if err := writeManifest(dir, m, key); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Dir: root, Key: key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := r.Recover(neverReplaced); err != nil || len(ms) != 1 || ms[0].State != StateIncomplete {
		t.Fatalf("recover: %v %v", ms, err)
	}
	return r, dir
}

// TestForgedEventAfterSealIsNotPlayedNorVerified: a consent line appended
// to an incomplete archive, chained correctly, is not read back as one of
// the recording's events, and verify names it as not covered by the
// signature rather than counting it among the verified lines.
func TestForgedEventAfterSealIsNotPlayedNorVerified(t *testing.T) {
	key := testKey(t)
	r, dir := leftIncomplete(t, key)
	m, _, _ := ReadManifest(dir)
	var sealed Part
	for _, p := range m.Parts {
		if p.Kind == KindEvents {
			sealed = p
		}
	}
	forged := forgeEvent(t, filepath.Join(dir, EventsFile), m.Session, "consent.granted", `{"granted":["view","control","files"]}`)

	data, err := readPart(dir, m, EventsFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != sealed.Size {
		t.Errorf("read %d bytes of the event log; the manifest seals %d", len(data), sealed.Size)
	}
	events, err := ReadEvents(bytes.NewReader(data), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(events)) != sealed.Lines {
		t.Errorf("read back %d events; the manifest seals %d", len(events), sealed.Lines)
	}
	for _, e := range events {
		if e.Seq == forged {
			t.Errorf("the forged line %d is read back as an event: %+v", forged, e)
		}
	}

	rep, err := r.Verify(m.Session, "")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("the sealed archive no longer verifies: %v", rep.Problems)
	}
	if rep.EventLines != sealed.Lines || rep.UnsealedLines != 1 {
		t.Errorf("verify counts %d event lines and %d unsealed; want %d sealed and 1 unsealed", rep.EventLines, rep.UnsealedLines, sealed.Lines)
	}
	named := false
	for _, w := range rep.Warnings {
		named = named || w.Part == EventsFile && strings.Contains(w.Message, fmt.Sprintf("line %d", forged)) &&
			strings.Contains(w.Message, `"consent.granted"`) && strings.Contains(w.Message, "not covered by the signature")
	}
	if !named {
		t.Errorf("no warning names the unsealed line %d: %v", forged, rep.Warnings)
	}
	var out strings.Builder
	WriteReport(&out, dir, rep)
	if !strings.Contains(out.String(), "verified up to the last seal") {
		t.Errorf("the report does not say only what was sealed is verified:\n%s", out.String())
	}
}

// TestForgedEventAfterCompleteSealFails: on a complete archive a line
// after the seal is a problem, named by its number.
func TestForgedEventAfterCompleteSealFails(t *testing.T) {
	key := testKey(t)
	m, dir := recordSample(t, t.TempDir(), key)
	forged := forgeEvent(t, filepath.Join(dir, EventsFile), m.Session, "consent.granted", `{"granted":["view"]}`)
	rep, _ := Verify(dir, key.Public().(ed25519.PublicKey))
	if rep.OK() || !strings.Contains(rep.Problems[0].String(), fmt.Sprintf("line %d", forged)) {
		t.Errorf("a line appended to a complete archive: %v", rep.Problems)
	}
}

// TestBrokerVerifyIgnoresDecryptedCopy: a decrypted copy put back into the
// broker's recordings folder, with a segment changed and decrypted.json
// made to match, does not pass the broker's own verify, which checks every
// part against the signed manifest. broker verify on the copy itself still
// takes it for what it is.
func TestBrokerVerifyIgnoresDecryptedCopy(t *testing.T) {
	r, dir, enc := encryptedArchive(t, "s_swap")
	if rep, _ := r.Verify("s_swap", ""); !rep.OK() {
		t.Fatalf("the archive does not verify as recorded: %v", rep.Problems)
	}

	clear := filepath.Join(t.TempDir(), "copy")
	if _, err := Decrypt(dir, clear, enc); err != nil {
		t.Fatal(err)
	}
	video := filepath.Join(clear, "video-0001.webm")
	data, _ := os.ReadFile(video)
	data[len(data)-10] ^= 1
	os.WriteFile(video, data, 0o600)
	var list Decrypted
	raw, _ := os.ReadFile(filepath.Join(clear, DecryptedFile))
	json.Unmarshal(raw, &list)
	for i, p := range list.Parts {
		if p.Name == "video-0001.webm" {
			list.Parts[i].Size, list.Parts[i].SHA256, _ = fileHash(video)
		}
	}
	raw, _ = json.Marshal(list)
	os.WriteFile(filepath.Join(clear, DecryptedFile), raw, 0o600)
	if rep, _ := VerifyWith(clear, r.PublicKey(), nil); !rep.OK() || !rep.Decrypted {
		t.Fatalf("the altered copy should pass as a decrypted copy offline (decrypted.json is not signed): %v", rep.Problems)
	}
	entries, _ := os.ReadDir(clear)
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(clear, e.Name()))
		os.WriteFile(filepath.Join(dir, e.Name()), data, 0o600)
	}

	rep, err := r.Verify("s_swap", "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Decrypted {
		t.Fatalf("the broker's verify takes a decrypted.json in its own recordings: ok %v, decrypted %v, warnings %v", rep.OK(), rep.Decrypted, rep.Warnings)
	}
	named := map[string]bool{}
	for _, p := range rep.Problems {
		named[p.Part] = true
	}
	if !named[DecryptedFile] || !named["video-0001.webm"] {
		t.Errorf("problems do not name %s and the changed segment: %v", DecryptedFile, rep.Problems)
	}
}

// TestLongEventLineVerifies: an event line longer than 64 KiB (and within
// the 256 KiB a line may have) is written, verified and read back.
func TestLongEventLineVerifies(t *testing.T) {
	key := testKey(t)
	r, err := New(Config{Dir: t.TempDir(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Start(Info{Session: "s_long"})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 150<<10)
	s.Event("file.listed", "tech", []byte(`{"listing":"`+long+`"}`))
	s.Input("lee", protocol.InputKey)
	if err := s.Finish("done"); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Verify("s_long", "")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("an intact archive with a 150 KiB event does not verify: %v", rep.Problems)
	}
	m, _, _ := ReadManifest(s.Dir())
	data, err := readPart(s.Dir(), m, EventsFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	events, err := ReadEvents(bytes.NewReader(data), 1000)
	found := false
	for _, e := range events {
		found = found || e.Type == "file.listed" && len(e.Detail) > 150<<10
	}
	if err != nil || !found || events[len(events)-1].Type != "recording.finished" {
		t.Errorf("read back %d events, the long one found %v: %v", len(events), found, err)
	}
}

// TestVerifyWhileSealedAgain: a verify that reads a live recording's
// manifest just before it is sealed again, and the new signature, which
// is renamed into place first, does not call the archive altered.
func TestVerifyWhileSealedAgain(t *testing.T) {
	key := testKey(t)
	r, err := New(Config{Dir: t.TempDir(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Start(Info{Session: "s_live"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Finish("done")
	m, _, err := ReadManifest(s.Dir())
	if err != nil || m.State != StateRecording {
		t.Fatalf("a live recording's manifest: %v %+v", err, m)
	}
	// The next seal, written aside, then put in place as writeManifest
	// does: the signature first, the manifest a moment later.
	next := t.TempDir()
	m.SealedAt = m.SealedAt.Add(time.Second)
	if err := writeManifest(next, m, key); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(next, SignatureFile), filepath.Join(s.Dir(), SignatureFile)); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(resealPause / 5)
		os.Rename(filepath.Join(next, ManifestFile), filepath.Join(s.Dir(), ManifestFile))
	}()
	rep, err := r.Verify("s_live", "")
	if err != nil || !rep.OK() {
		t.Fatalf("a recording verified as it was sealed again: %v %v", err, rep.Problems)
	}

	// A signature that stays apart from its manifest is reported.
	os.WriteFile(filepath.Join(s.Dir(), SignatureFile), []byte(base64.StdEncoding.EncodeToString(make([]byte, 64))+"\n"), 0o600)
	if rep, _ := r.Verify("s_live", ""); rep.OK() {
		t.Error("a live recording whose signature does not match its manifest verified")
	}
}

// TestOpenPartServesTheSealedBytes: an unencrypted part opened for
// serving reads, and seeks within, its sealed bytes only.
func TestOpenPartServesTheSealedBytes(t *testing.T) {
	key := testKey(t)
	_, dir := leftIncomplete(t, key)
	m, _, _ := ReadManifest(dir)
	var shell Part
	for _, p := range m.Parts {
		if p.Kind == KindShell {
			shell = p
		}
	}
	path := filepath.Join(dir, shell.Name)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("[9.5, \"o\", \"rm -rf / # typed by nobody\\r\\n\"]\n")
	f.Close()
	part, err := OpenPart(dir, m, shell.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	if end, err := part.Seek(0, io.SeekEnd); err != nil || end != shell.Size {
		t.Errorf("the part ends at %d (%v); sealed %d", end, err, shell.Size)
	}
	part.Seek(shell.Size-10, io.SeekStart)
	tail, _ := io.ReadAll(part)
	want, _ := os.ReadFile(path)
	if !bytes.Equal(tail, want[shell.Size-10:shell.Size]) {
		t.Errorf("the last 10 sealed bytes read %q; want %q", tail, want[shell.Size-10:shell.Size])
	}
	if _, err := OpenPart(dir, m, "extra.cast", nil); err == nil {
		t.Error("a file the manifest does not list was opened")
	}
}

// TestVerifyRefusesAnotherSessionsArchive: the archive of one session put
// in the place of another's (renamed over it, or its manifest and parts
// copied there) is intact as a whole, signature and all; the broker's
// verify of the second session must still say it is not that session's.
func TestVerifyRefusesAnotherSessionsArchive(t *testing.T) {
	key := testKey(t)
	root := t.TempDir()
	_, dir := recordSample(t, root, key)
	r, err := New(Config{Dir: root, Key: key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Start(Info{Session: "s_other"})
	if err != nil {
		t.Fatal(err)
	}
	s.Event("consent.granted", "user", []byte(`{"granted":["view"]}`))
	if err := s.Finish("done"); err != nil {
		t.Fatal(err)
	}
	if rep, err := r.Verify("s_other", ""); err != nil || !rep.OK() {
		t.Fatalf("the second session's own archive: %+v %v", rep, err)
	}
	if err := os.RemoveAll(s.Dir()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(copyDir(t, dir), s.Dir()); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Verify("s_other", "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatalf("the archive of session %s verifies as session s_other's", rep.Session)
	}
	if !strings.Contains(fmt.Sprint(rep.Problems), "s_test1") {
		t.Errorf("problems %v do not name the session the archive is of", rep.Problems)
	}
}

// TestVerifyNamesNoServerPath: what verify says about an archive reaches
// API clients (the error, the report, the note of a failed recording), so
// it says what is wrong without the server's paths; the broker's log
// keeps them.
func TestVerifyNamesNoServerPath(t *testing.T) {
	key := testKey(t)
	root := t.TempDir()
	var logged bytes.Buffer
	r, err := New(Config{Dir: root, Key: key, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}

	// A file where the archive's directory should be.
	if err := os.WriteFile(filepath.Join(root, "s_file"), []byte("not an archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = r.Verify("s_file", "")
	if !errors.Is(err, ErrNotArchive) {
		t.Errorf("verify of a file: %v, want ErrNotArchive", err)
	}
	if err != nil && strings.Contains(err.Error(), root) {
		t.Errorf("verify's error names the server's path: %q", err)
	}
	if !strings.Contains(logged.String(), filepath.Join(root, "s_file")) {
		t.Errorf("the log does not say where the archive is: %q", logged.String())
	}

	// Files of an archive that cannot be read as files: a directory in
	// the place of the manifest, of its signature, of the event log.
	_, dir := recordSample(t, root, key)
	for _, name := range []string{SignatureFile, EventsFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "s_nomanifest"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "s_nomanifest", ManifestFile), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, session := range []string{filepath.Base(dir), "s_nomanifest"} {
		rep, err := r.Verify(session, "")
		if err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(rep)
		if rep.OK() {
			t.Errorf("%s verifies: %s", session, out)
		}
		if strings.Contains(string(out), root) {
			t.Errorf("the report on %s names the server's path: %s", session, out)
		}
	}

	// The player's events, read from a file that cannot be read.
	f, err := os.Open(filepath.Join(dir, EventsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ReadEvents(f, 10); err == nil || strings.Contains(err.Error(), root) {
		t.Errorf("reading events from a directory: %v, want an error without the server's path", err)
	}
}

// neverReplaced is Recover's question for a broker that stored no
// finished manifest for any archive.
func neverReplaced(string, string) bool { return false }

// TestRolledBackArchiveIsCaught: a seal taken while the session ran (a
// copy of the manifest and its signature, or a download of the live
// recording) put back after the end, with the parts cut to what it
// covers, is signed and consistent; against the manifest the broker
// stored when the recording finished it does not pass, and a restart
// does not seal it again as an archive the broker left recording.
func TestRolledBackArchiveIsCaught(t *testing.T) {
	key := testKey(t)
	root := t.TempDir()
	clock := &fakeClock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	r, err := New(Config{Dir: root, Key: key, Now: clock.Now, SegmentDuration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var sealed *Manifest
	s, err := r.Start(Info{Session: "s_roll", RequestKeyframe: func() {}, OnSealed: func(m *Manifest) { sealed = m }})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	var p packetizer
	var early, earlySig []byte
	for i := range 60 {
		for _, pkt := range p.packets(vp8Frame(i%6 == 0, 320, 240, 1500), uint32(i*3000)) {
			s.VideoPacket(pkt)
		}
		clock.Add(33 * time.Millisecond)
		if i == 30 {
			waitFor(t, func() bool { m, _, err := ReadManifest(dir); return err == nil && len(m.Parts) > 2 })
			early, _ = os.ReadFile(filepath.Join(dir, ManifestFile))
			earlySig, _ = os.ReadFile(filepath.Join(dir, SignatureFile))
		}
	}
	s.Event("file.transfer", "lee", []byte(`{"name":"payroll.xlsx","direction":"download"}`))
	if err := s.Finish("done"); err != nil {
		t.Fatal(err)
	}
	if rep, err := r.Verify("s_roll", sealed.SHA256); err != nil || !rep.OK() {
		t.Fatalf("the finished archive: %v %+v", err, rep)
	}

	os.WriteFile(filepath.Join(dir, ManifestFile), early, 0o600)
	os.WriteFile(filepath.Join(dir, SignatureFile), earlySig, 0o600)
	m, _, err := ReadManifest(dir)
	if err != nil || m.State != StateRecording {
		t.Fatalf("the early seal: %v %+v", err, m)
	}
	listed := map[string]int64{ManifestFile: -1, SignatureFile: -1}
	for _, p := range m.Parts {
		listed[p.Name] = p.Size
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if size, ok := listed[e.Name()]; !ok {
			os.Remove(filepath.Join(dir, e.Name()))
		} else if size >= 0 {
			os.Truncate(filepath.Join(dir, e.Name()), size)
		}
	}
	if rep, err := r.Verify("s_roll", ""); err != nil || !rep.OK() {
		t.Fatalf("the early seal put back is consistent on its own: %v %+v", err, rep)
	}
	rep, err := r.Verify("s_roll", sealed.SHA256)
	if err != nil || rep.OK() || !strings.Contains(fmt.Sprint(rep.Problems), "not the manifest the broker sealed") {
		t.Fatalf("rolled back to a mid-session seal: %v, problems %v; want it caught", err, rep.Problems)
	}
	// A restart leaves it as it is.
	replaced := func(session, manifest string) bool { return session == "s_roll" && manifest != sealed.SHA256 }
	if ms, err := r.Recover(replaced); err != nil || len(ms) != 0 {
		t.Fatalf("recover sealed %d archives again (%v)", len(ms), err)
	}
	if raw, _ := os.ReadFile(filepath.Join(dir, ManifestFile)); string(raw) != string(early) {
		t.Error("recover rewrote the rolled-back manifest")
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
