package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"

	"github.com/tether-support/tether/broker/record"
	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/broker/signal"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// apiClient calls the REST API with a bearer key, trusting the broker's CA.
type apiClient struct {
	base string
	key  string
	http *http.Client
}

func newAPIClient(t testing.TB, url, caFile, key string) *apiClient {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &apiClient{base: url, key: key, http: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

func (c *apiClient) call(t testing.TB, method, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, c.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if b, ok := out.(*[]byte); ok {
			*b = body
		} else if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, body)
		}
	}
	return resp.StatusCode
}

type recordingResp struct {
	Session       string           `json:"session"`
	State         string           `json:"state"`
	Ticket        string           `json:"ticket"`
	Technician    string           `json:"technician"`
	FramesRelayed int64            `json:"frames_relayed"`
	FramesWritten int64            `json:"frames_written"`
	Note          string           `json:"note"`
	Manifest      *record.Manifest `json:"manifest"`
}

// recordBriefly records a session for ticket that shows the screen once
// and ends, and returns it with its recording once the archive is complete.
func recordBriefly(t *testing.T, ctx context.Context, b *broker, display, ticket string) (*client.SessionInfo, recordingResp) {
	t.Helper()
	c := b.client(t)
	sess, err := c.CreateSession(ctx, ticket)
	if err != nil {
		t.Fatal(err)
	}
	host := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatalf("no video: %v\n%s", err, host.stderr.String())
	}
	c.EndSession(ctx, sess.ID)
	j.Close()
	host.wait(t, 15*time.Second)
	api := newAPIClient(t, b.URL(), b.CAFile(), b.admin.APIKey)
	return sess, waitRecording(t, api, sess.ID, record.StateComplete)
}

// waitRecording polls the API until the session's archive is in state.
func waitRecording(t testing.TB, api *apiClient, id, state string) recordingResp {
	t.Helper()
	var got recordingResp
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if api.call(t, "GET", "/api/v1/recordings/"+id, &got) == http.StatusOK && got.State == state {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("recording of %s never became %s (last: %+v)", id, state, got)
	return got
}

// TestSessionIsRecorded records a real session (host under Xvfb, video,
// control, input, clipboard) and checks the archive: video segments with
// every relayed frame, the events a supervisor needs, and a signature
// that verifies online, with `broker verify`, and from the downloaded zip;
// tampering makes `broker verify` fail naming the part.
func TestSessionIsRecorded(t *testing.T) {
	display := xtest.StartXvfb(t, 800, 600)
	xtest.StartPattern(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dataDir := ""
	b := startBrokerWith(t, func(c *server.Config) {
		c.Recording.SegmentDuration = time.Second
		c.Recording.ShellInput = true
		dataDir = c.DataDir
	})
	c := b.client(t)
	sess, err := c.CreateSession(ctx, "INC-REC-1", protocol.AllPermissions...)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	host := runHostEnv(t, display, true, []string{"HOME=" + home, "SHELL=/bin/bash"}, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatalf("no video: %v\nhost:\n%s", err, host.stderr.String())
	}
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, protocol.AllPermissions...) }); err != nil {
		t.Fatal(err)
	}
	if ok, reason, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatalf("take control: %v %q %v", ok, reason, err)
	}
	// A command in a shell, and a file each way.
	sh, err := j.Shell(ctx, 1, 100, 30)
	if err != nil {
		t.Fatal(err)
	}
	out := shellOutput(sh)
	fmt.Fprintf(sh, "echo recorded-$((6*7))\r")
	waitText(t, out, `recorded-42`, 10*time.Second)
	// A password prompt as getpass makes one: echo off, then the prompt.
	fmt.Fprintf(sh, "stty -echo; printf 'Pass''word: '; read pw; stty echo; echo \"got ${#pw}\"\r")
	waitText(t, out, `Password: `, 10*time.Second)
	for _, key := range "s3cr3t-pw\r" {
		fmt.Fprint(sh, string(key))
		time.Sleep(20 * time.Millisecond)
	}
	waitText(t, out, `got 9`, 10*time.Second)
	sh.Close()
	files, err := j.Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tool, toolSum := randomFile(t, t.TempDir(), "tool.bin", 300_000)
	if _, err := files.Push(ctx, tool, "", nil); err != nil {
		t.Fatal(err)
	}
	randomFile(t, home, "install.log", 5000)
	if _, err := files.Pull(ctx, "install.log", filepath.Join(t.TempDir(), "install.log"), nil); err != nil {
		t.Fatal(err)
	}
	files.Close()
	// Three seconds of a moving pointer and some typing: frames to record.
	for i := range 90 {
		send(t, ctx, j, protocol.InputEvent{Kind: protocol.InputMove, X: 100 + i*5, Y: 100 + i*3})
		if i%30 == 0 {
			send(t, ctx, j, tap("KeyA")...)
			send(t, ctx, j, protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 200, Y: 200},
				protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: false, X: 200, Y: 200})
		}
		time.Sleep(33 * time.Millisecond)
	}
	if err := j.SendControl(ctx, protocol.ControlMessage{Type: protocol.ControlClipboard, Text: "ticket password hunter2"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := c.EndSession(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	host.wait(t, 15*time.Second)

	// JSON answers are checked against openapi.yaml; binary parts and the
	// zip go through raw.
	raw := newAPIClient(t, b.URL(), b.CAFile(), b.admin.APIKey)
	api := newAPIClient(t, b.URL(), b.CAFile(), b.admin.APIKey)
	api.http = newSpecChecker(t, b).client()
	rec := waitRecording(t, api, sess.ID, record.StateComplete)
	m := rec.Manifest
	if rec.Ticket != "INC-REC-1" || rec.Technician != "admin" {
		t.Errorf("recording ticket %q technician %q", rec.Ticket, rec.Technician)
	}
	segments := 0
	for _, p := range m.Parts {
		if p.Kind == record.KindVideo {
			segments++
			if p.Width != 800 || p.Height != 600 || p.Frames == 0 {
				t.Errorf("segment %+v", p)
			}
		}
	}
	if segments < 2 {
		t.Errorf("%d video segments for ~4 s at 1 s segments", segments)
	}
	t.Logf("frames relayed %d, written %d, segments %d, video %+v", m.Video.Relayed, m.Video.Written, segments, m.Video)
	if m.Video.Relayed == 0 || m.Video.Written+m.Video.BeforeKey < m.Video.Relayed {
		t.Errorf("frames relayed %d, written %d (+%d before the first keyframe): frames lost", m.Video.Relayed, m.Video.Written, m.Video.BeforeKey)
	}
	for _, typ := range []string{"host.connected", "viewer.joined", "consent.granted", "control.taken", "input", "clipboard",
		"shell.opened", "shell.command", "shell.closed", "file.transfer", "session.ended", "recording.finished"} {
		if m.Counts[typ] == 0 {
			t.Errorf("no %s event recorded; counts %v", typ, m.Counts)
		}
	}
	archive := filepath.Join(dataDir, "recordings", sess.ID)
	events, _ := os.ReadFile(filepath.Join(archive, record.EventsFile))
	for _, want := range []string{`"command":"echo recorded-$((6*7))"`, toolSum, `"name":"install.log"`, `"direction":"download"`} {
		if !bytes.Contains(events, []byte(want)) {
			t.Errorf("events.jsonl lacks %s", want)
		}
	}
	if m.Counts["file.transfer"] != 2 {
		t.Errorf("%d file transfers recorded, want 2", m.Counts["file.transfer"])
	}
	var cast string
	for _, p := range m.Parts {
		if p.Kind == record.KindShell {
			data, _ := os.ReadFile(filepath.Join(archive, p.Name))
			cast = p.Name
			if !bytes.Contains(data, []byte("recorded-42")) {
				t.Errorf("the shell's transcript %s lacks the command's output", p.Name)
			}
			// The viewer's terminal size, sent as the channel opened, is
			// the transcript's from the first command on.
			if size := castSizeAt(t, data, "recorded-42"); size != "100x30" {
				t.Errorf("the transcript shows the command at %s, want the viewer's 100x30", size)
			}
			// Typing is recorded here, but not the password.
			typed := castInput(t, data)
			if !strings.Contains(typed, "echo recorded-$((6*7))") || !strings.Contains(typed, "read pw") {
				t.Errorf("the transcript's input lacks the commands: %q", typed)
			}
			if strings.Contains(typed, "s3") || bytes.Contains(data, []byte("s3cr3t")) {
				t.Errorf("the password is in the transcript: input %q", typed)
			}
		}
	}
	if cast == "" {
		t.Fatalf("no shell transcript in %+v", m.Parts)
	}
	if bytes.Contains(events, []byte("hunter2")) {
		t.Error("clipboard content is in events.jsonl")
	}

	// Verify online, as the console's button does.
	var rep struct {
		OK       bool             `json:"ok"`
		Problems []record.Problem `json:"problems"`
	}
	if code := api.call(t, "POST", "/api/v1/recordings/"+sess.ID+"/verify", &rep); code != 200 || !rep.OK {
		t.Fatalf("online verify: %d %+v", code, rep)
	}

	// Offline, with the command and the published key.
	brokerBin := xtest.Build(t, "./broker")
	var pub []byte
	if code := api.call(t, "GET", "/api/v1/recordings/public-key", &pub); code != 200 {
		t.Fatalf("public key: %d", code)
	}
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(keyFile, pub, 0o644)
	verify := func(path string) (string, int) {
		out, err := exec.Command(brokerBin, "verify", "-key", keyFile, path).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := verify(archive); code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("broker verify: exit %d\n%s", code, out)
	}
	// Without a key to trust it cannot say who signed: anyone who rewrote
	// the archive could have signed it.
	untrusted, err := exec.Command(brokerBin, "verify", "-data", t.TempDir(), archive).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(untrusted), "pass -key") {
		t.Fatalf("broker verify without a trusted key: %v\n%s", err, untrusted)
	}

	// The download is a zip of the archive that verifies too.
	var zipData []byte
	if code := raw.call(t, "GET", "/api/v1/recordings/"+sess.ID+"/download", &zipData); code != 200 {
		t.Fatalf("download: %d", code)
	}
	// A HEAD (a link checker, a download manager sizing it up) is
	// answered without the archive and is no download in the trail.
	if code := raw.call(t, "HEAD", "/api/v1/recordings/"+sess.ID+"/download", nil); code != 200 {
		t.Fatalf("HEAD of the download: %d", code)
	}
	// The whole session is kept by no browser or proxy cache.
	head, _ := http.NewRequest("HEAD", raw.base+"/api/v1/recordings/"+sess.ID+"/download", nil)
	head.Header.Set("Authorization", "Bearer "+raw.key)
	if resp, err := raw.http.Do(head); err != nil || !strings.Contains(resp.Header.Get("Cache-Control"), "no-store") {
		t.Errorf("the download's Cache-Control: %v %v, want no-store", resp.Header.Get("Cache-Control"), err)
	} else {
		resp.Body.Close()
	}
	zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
	if err != nil {
		t.Fatalf("download is not a zip: %v", err)
	}
	zipFile := filepath.Join(t.TempDir(), "archive.zip")
	os.WriteFile(zipFile, zipData, 0o600)
	if out, code := verify(zipFile); code != 0 {
		t.Fatalf("broker verify of the download: exit %d\n%s", code, out)
	}
	// Its entries are dated with the recording's time (minutes ago), not 1980.
	for _, f := range zr.File {
		if time.Since(f.Modified) > 5*time.Minute || time.Until(f.Modified) > time.Minute {
			t.Errorf("zip entry %s is dated %v, not when it was recorded", f.Name, f.Modified)
		}
	}
	// A byte flipped inside an entry of the downloaded zip is a damaged
	// part: verify names it and says not intact (1), not "cannot check".
	for _, f := range zr.File {
		if name := filepath.Base(f.Name); name == "video-0001.webm" || name == record.EventsFile {
			off, err := f.DataOffset()
			if err != nil {
				t.Fatal(err)
			}
			damaged := bytes.Clone(zipData)
			damaged[off+int64(f.CompressedSize64)/2] ^= 0x04
			damagedFile := filepath.Join(t.TempDir(), "damaged.zip")
			os.WriteFile(damagedFile, damaged, 0o600)
			if out, code := verify(damagedFile); code != 1 || !strings.Contains(out, "FAILED    "+name) {
				t.Errorf("zip with a byte flipped in %s: exit %d\n%s", name, code, out)
			}
		}
	}

	// Tampering with any part type fails, naming the part.
	for _, name := range []string{"video-0001.webm", record.EventsFile, record.ManifestFile, cast} {
		tampered := filepath.Join(t.TempDir(), sess.ID)
		os.CopyFS(tampered, os.DirFS(archive))
		data, _ := os.ReadFile(filepath.Join(tampered, name))
		data[len(data)/3] ^= 0x04
		os.WriteFile(filepath.Join(tampered, name), data, 0o600)
		out, code := verify(tampered)
		if code != 1 || !strings.Contains(out, "FAILED    "+name) {
			t.Errorf("tampered %s: exit %d\n%s", name, code, out)
		}
	}

	var list struct {
		Recordings []recordingResp `json:"recordings"`
		More       bool            `json:"more"`
	}
	if code := api.call(t, "GET", "/api/v1/recordings?ticket=REC-1&has=", &list); code != 200 || len(list.Recordings) != 1 || list.More {
		t.Errorf("search: %d, %d recordings, more %v", code, len(list.Recordings), list.More)
	}
	var evs struct {
		Events []record.Event `json:"events"`
	}
	if code := api.call(t, "GET", "/api/v1/recordings/"+sess.ID+"/events", &evs); code != 200 || len(evs.Events) == 0 {
		t.Errorf("events: %d, %d events", code, len(evs.Events))
	}
	var seg []byte
	if code := raw.call(t, "GET", "/api/v1/recordings/"+sess.ID+"/parts/video-0001.webm", &seg); code != 200 || !bytes.HasPrefix(seg, []byte{0x1a, 0x45, 0xdf, 0xa3}) {
		t.Errorf("segment: %d, not WebM", code)
	}

	// Playback and download are audited.
	var trail struct {
		Events []struct {
			Type  string    `json:"type"`
			Actor string    `json:"actor"`
			At    time.Time `json:"at"`
		} `json:"events"`
	}
	api.call(t, "GET", "/api/v1/sessions/"+sess.ID+"/events", &trail)
	seen := map[string]bool{}
	trailAt := map[string][]time.Time{}
	for _, e := range trail.Events {
		seen[e.Type] = true
		trailAt[e.Type+" "+e.Actor] = append(trailAt[e.Type+" "+e.Actor], e.At)
	}
	// The recording has each event when the trail has it (the trail keeps
	// milliseconds), not when the database had written it.
	for _, e := range evs.Events {
		key := e.Type + " " + e.Actor
		if len(trailAt[key]) == 0 {
			continue // the recording's own events
		}
		if d := e.At.Sub(trailAt[key][0]).Abs(); d >= time.Millisecond {
			t.Errorf("%s by %s is at %v in the recording, %v in the audit trail", e.Type, e.Actor, e.At, trailAt[key][0])
		}
		trailAt[key] = trailAt[key][1:]
	}
	for _, typ := range []string{"recording.ready", "recording.played", "recording.downloaded", "recording.verified"} {
		if !seen[typ] {
			t.Errorf("no %s in the audit trail", typ)
		}
	}
	downloads := 0
	for _, e := range trail.Events {
		if e.Type == "recording.downloaded" {
			downloads++
		}
	}
	if downloads != 1 {
		t.Errorf("%d downloads in the audit trail after one download and one HEAD", downloads)
	}
}

// TestRecordingAccess: technicians see their own recordings only;
// supervisors and admins see all; nobody unauthenticated sees any.
func TestRecordingAccess(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := startBroker(t)
	for _, u := range []struct{ name, role string }{{"tech1", "technician"}, {"tech2", "technician"}, {"sup", "supervisor"}} {
		if err := b.CreateUser(ctx, u.name, "correct horse battery", u.role); err != nil {
			t.Fatal(err)
		}
	}
	tech1 := b.login(t, ctx, "tech1", "correct horse battery")
	sess, err := tech1.CreateSession(ctx, "INC-ACL")
	if err != nil {
		t.Fatal(err)
	}
	host := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	j, err := tech1.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatalf("no video: %v\n%s", err, host.stderr.String())
	}
	tech1.EndSession(ctx, sess.ID)
	j.Close()
	host.wait(t, 15*time.Second)

	admin := newAPIClient(t, b.URL(), b.CAFile(), b.admin.APIKey)
	waitRecording(t, admin, sess.ID, record.StateComplete)
	keys := map[string]string{"admin": b.admin.APIKey}
	for _, name := range []string{"tech1", "tech2", "sup"} {
		keys[name] = apiKeyFor(t, b, name)
	}
	for _, tc := range []struct {
		who    string
		status int
		listed int
	}{{"admin", 200, 1}, {"sup", 200, 1}, {"tech1", 200, 1}, {"tech2", 404, 0}, {"", 401, -1}} {
		api := newAPIClient(t, b.URL(), b.CAFile(), keys[tc.who])
		if got := api.call(t, "GET", "/api/v1/recordings/"+sess.ID, nil); got != tc.status {
			t.Errorf("%q GET recording: %d, want %d", tc.who, got, tc.status)
		}
		for _, path := range []string{"/download", "/events", "/parts/" + record.EventsFile} {
			if got := api.call(t, "GET", "/api/v1/recordings/"+sess.ID+path, nil); got != tc.status {
				t.Errorf("%q GET %s: %d, want %d", tc.who, path, got, tc.status)
			}
		}
		var list struct {
			Recordings []recordingResp `json:"recordings"`
		}
		code := api.call(t, "GET", "/api/v1/recordings?ticket=ACL", &list)
		if tc.listed < 0 {
			if code != 401 {
				t.Errorf("unauthenticated list: %d", code)
			}
			continue
		}
		if code != 200 || len(list.Recordings) != tc.listed {
			t.Errorf("%q list: %d with %d recordings, want %d", tc.who, code, len(list.Recordings), tc.listed)
		}
	}
	// Parts outside the manifest are never served.
	if got := admin.call(t, "GET", "/api/v1/recordings/"+sess.ID+"/parts/..%2F..%2Ftether.db", nil); got != 404 {
		t.Errorf("path escape: %d", got)
	}
	// Whole-archive work is rate-limited per person.
	sup := newAPIClient(t, b.URL(), b.CAFile(), keys["sup"])
	limited := 0
	for range 12 {
		if code := sup.call(t, "POST", "/api/v1/recordings/"+sess.ID+"/verify", nil); code == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Error("12 verifications in a row were all allowed")
	}
	if code := admin.call(t, "POST", "/api/v1/recordings/"+sess.ID+"/verify", nil); code != 200 {
		t.Errorf("another person's verification: %d", code)
	}
	// Bad search input gets a clear error.
	for _, q := range []string{"from=yesterday", "has=printer", "limit=0"} {
		if got := admin.call(t, "GET", "/api/v1/recordings?"+q, nil); got != 400 {
			t.Errorf("search %s: %d, want 400", q, got)
		}
	}
}

// TestRecordingReadsAreAudited: a supervisor who reads a recording's
// terminal transcript, events or video through the API, without opening
// its summary as the player does, shows in the session's trail as having
// played it; reads that follow each other count as one playback, and a
// read after a pause counts as another.
func TestRecordingReadsAreAudited(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := startBroker(t)
	sess, rec := recordBriefly(t, ctx, b, display, "INC-READ")
	if err := b.CreateUser(ctx, "sup", "correct horse battery", "supervisor"); err != nil {
		t.Fatal(err)
	}
	sup := newAPIClient(t, b.URL(), b.CAFile(), apiKeyFor(t, b, "sup"))
	admin := newAPIClient(t, b.URL(), b.CAFile(), b.admin.APIKey)
	playedBySup := func() []string {
		var trail struct {
			Events []struct {
				Type   string          `json:"type"`
				Actor  string          `json:"actor"`
				Detail json.RawMessage `json:"detail"`
			} `json:"events"`
		}
		admin.call(t, "GET", "/api/v1/sessions/"+sess.ID+"/events", &trail)
		var out []string
		for _, e := range trail.Events {
			if e.Type == "recording.played" && e.Actor == "sup" {
				out = append(out, string(e.Detail))
			}
		}
		return out
	}
	var video string
	for _, p := range rec.Manifest.Parts {
		if p.Kind == record.KindVideo {
			video = p.Name
			break
		}
	}
	var data []byte
	if code := sup.call(t, "GET", "/api/v1/recordings/"+sess.ID+"/parts/"+video, &data); code != 200 || len(data) == 0 {
		t.Fatalf("supervisor reads %s: %d", video, code)
	}
	if got := playedBySup(); len(got) != 1 || !strings.Contains(got[0], video) {
		t.Fatalf("after the supervisor read %s, the trail has %q; want one playback naming the part", video, got)
	}
	for _, path := range []string{"/events", "/parts/" + record.EventsFile, "/parts/" + video, ""} {
		if code := sup.call(t, "GET", "/api/v1/recordings/"+sess.ID+path, nil); code != 200 {
			t.Fatalf("supervisor reads %q: %d", path, code)
		}
	}
	if got := playedBySup(); len(got) != 1 {
		t.Errorf("reads that follow each other make %d playbacks, want 1: %q", len(got), got)
	}
	b.advance(11 * time.Minute)
	if code := sup.call(t, "GET", "/api/v1/recordings/"+sess.ID+"/events", nil); code != 200 {
		t.Fatalf("supervisor reads the events: %d", code)
	}
	if got := playedBySup(); len(got) != 2 || !strings.Contains(got[1], record.EventsFile) {
		t.Errorf("a read after 11 minutes: the trail has %q, want a second playback naming the events", got)
	}
}

// apiKeyFor logs a user in and returns the bearer token the login gives.
func apiKeyFor(t *testing.T, b *broker, username string) string {
	t.Helper()
	u, _ := dial.BrokerURL(b.URL())
	c, err := client.New(client.Config{Broker: u, CAFile: b.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Login(context.Background(), username, "correct horse battery", "")
	if err != nil {
		t.Fatal(fmt.Errorf("log in %s: %w", username, err))
	}
	return tok
}

// TestRecordingDiskFull fills the disk the archives are on mid-session:
// the session ends and both the user and the technician are told why; the
// recording reads failed, with why, and the ticket system hears of it; a
// new session is refused with the same reason while the disk is full; a
// restart once there is room again leaves the recording failed.
func TestRecordingDiskFull(t *testing.T) {
	mnt := smallDisk(t, 2)
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dataDir := ""
	b, hc := webhookBroker(t, func(c *server.Config) {
		c.Recording.Dir = mnt
		c.Recording.SegmentDuration = 500 * time.Millisecond
		dataDir = c.DataDir
	})
	ts := newTicketSystem(t)
	register(t, b, hc, ts)
	c := b.client(t)
	sess, err := c.CreateSession(ctx, "INC-FULL")
	if err != nil {
		t.Fatal(err)
	}
	host := startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatalf("no video: %v\n%s", err, host.stderr.String())
	}
	filler := filepath.Join(mnt, "filler")
	fill(t, filler)
	select {
	case <-j.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the session went on with its archive unwritable")
	}
	if !strings.Contains(j.EndReason(), "could not be recorded") {
		t.Errorf("technician told %q", j.EndReason())
	}
	// The user reads why on the host's terminal.
	host.waitOutput(t, "could not be recorded", 1, 15*time.Second)
	host.wait(t, 15*time.Second)

	// The supervisor reads that the recording failed, and why; what was
	// sealed before the disk filled verifies.
	api := newAPIClient(t, b.URL(), b.CAFile(), b.admin.APIKey)
	if rec := waitRecording(t, api, sess.ID, record.StateFailed); !strings.Contains(rec.Note, "no space left") {
		t.Errorf("the failed recording's note %q does not say the disk is full", rec.Note)
	}
	if ready := ts.wait(t, sess.ID, "recording.ready")["recording.ready"].Data; ready["state"] != record.StateFailed {
		t.Errorf("recording.ready %v, want state failed", ready)
	}
	var rep struct {
		OK       bool             `json:"ok"`
		Problems []record.Problem `json:"problems"`
	}
	if code := api.call(t, "POST", "/api/v1/recordings/"+sess.ID+"/verify", &rep); code != 200 || !rep.OK {
		t.Errorf("verify the failed recording: %d %+v", code, rep)
	}

	// While the disk is full, a new session cannot start: the technician
	// hears why.
	next, err := c.CreateSession(ctx, "INC-FULL-2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Join(ctx, next.ID); err == nil || !strings.Contains(err.Error(), "cannot record") {
		t.Errorf("join with the disk full: %v", err)
	}

	// The restart seals the archive the full disk left open, but the
	// recording stays failed: the broker stopped nothing, the disk did.
	b.stop()
	os.Remove(filler)
	b2 := startBrokerWith(t, func(c *server.Config) {
		c.DataDir = dataDir
		c.Recording.Dir = mnt
	})
	var after recordingResp
	if code := newAPIClient(t, b2.URL(), b2.CAFile(), b2.admin.APIKey).call(t, "GET", "/api/v1/recordings/"+sess.ID, &after); code != 200 || after.State != record.StateFailed {
		t.Errorf("after a restart the recording is %d %s (%s); want failed", code, after.State, after.Note)
	}
}

// TestRecordingRefusedEndsSession: a host comes with its code while the
// disk the archives are on is full. It is refused, and as its code is
// spent and nobody can join the session any more, the session ends at
// once, for the reason the user read, and the ticket system hears of it;
// it does not wait for ever.
func TestRecordingRefusedEndsSession(t *testing.T) {
	mnt := smallDisk(t, 1)
	b, hc := webhookBroker(t, func(c *server.Config) { c.Recording.Dir = mnt })
	ts := newTicketSystem(t)
	register(t, b, hc, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := b.client(t).CreateSession(ctx, "INC-FULL-3")
	if err != nil {
		t.Fatal(err)
	}
	fill(t, filepath.Join(mnt, "filler"))

	u, _ := dial.BrokerURL(b.URL())
	tlsCfg, err := dial.TLSConfig(b.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	ws, err := dial.WebSocket(ctx, u, "/ws/host", tlsCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := dial.NewConn(ws).Send(protocol.TypeHello, "", protocol.Hello{Version: protocol.Version, Role: protocol.RoleHost, Code: sess.Code,
		Host: &protocol.HostInfo{Hostname: "pc-1", OS: "linux", Width: 800, Height: 600}}); err != nil {
		t.Fatal(err)
	}
	var refused protocol.ErrorPayload
	if err := protocol.DecodePayload(readType(t, ws, protocol.TypeError), &refused); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(refused.Message, "cannot record") {
		t.Errorf("the user is told %q", refused.Message)
	}

	ended := ts.wait(t, sess.ID, "session.ended")["session.ended"].Data
	if reason, _ := ended["end_reason"].(string); reason != refused.Message {
		t.Errorf("session.ended end_reason %q, want what the user read, %q", reason, refused.Message)
	}
	if status, s := apiCall(t, hc, "GET", b.URL()+"/api/v1/sessions/"+sess.ID, b.admin.APIKey, "", nil); status != 200 || s["state"] != "ended" {
		t.Errorf("the refused session: %d, state %v; want ended", status, s["state"])
	}
}

// smallDisk mounts a file system of mb megabytes for the test, to fill;
// the test is skipped where it cannot mount (it needs root).
func smallDisk(t *testing.T, mb int) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0700", mb), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	for { // the last blocks, byte-sized
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
}

// killableBroker is bin/broker running as its own process, to be killed.
type killableBroker struct {
	cmd    *exec.Cmd
	url    string
	ca     string
	admin  server.InitialAdmin
	stdout *syncBuffer // what it printed on the terminal
	stderr *syncBuffer // its log
}

// liveSession creates a session on the broker process, starts a host on
// display with its code and joins it as the admin, returning once a frame
// has arrived.
func (bp *killableBroker) liveSession(t *testing.T, ctx context.Context, display, ticket string) (*client.Client, *client.SessionInfo, *client.Joined, *hostProc) {
	t.Helper()
	u, _ := dial.BrokerURL(bp.url)
	c, err := client.New(client.Config{Broker: u, CAFile: bp.ca, Token: bp.admin.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.CreateSession(ctx, ticket)
	if err != nil {
		t.Fatal(err)
	}
	host := startHost(t, display, "-broker", bp.url, "-ca", bp.ca, sess.Code)
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatalf("no video: %v\n%s", err, host.stderr.String())
	}
	return c, sess, j, host
}

func runBrokerProc(t testing.TB, bin, dataDir string, extra ...string) *killableBroker {
	t.Helper()
	port := freeTCPPort(t)
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpPort := udp.LocalAddr().(*net.UDPAddr).Port
	udp.Close()
	args := append([]string{"-addr", fmt.Sprintf("127.0.0.1:%d", port), "-udp", fmt.Sprint(udpPort), "-data", dataDir}, extra...)
	cmd := exec.Command(bin, args...)
	out, _ := cmd.StdoutPipe()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan struct{})
	stdout := &syncBuffer{}
	go func() {
		buf := make([]byte, 4096)
		started := false
		for {
			n, err := out.Read(buf)
			stdout.Write(buf[:n])
			if !started && strings.Contains(stdout.String(), "Console:") {
				started = true
				close(ready)
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("broker did not start:\n%s", stderr.String())
	}
	p := &killableBroker{cmd: cmd, url: fmt.Sprintf("https://localhost:%d", port), ca: filepath.Join(dataDir, "certs", "ca.pem"), stdout: stdout, stderr: &stderr}
	data, err := os.ReadFile(filepath.Join(dataDir, server.InitialAdminFile))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(data, &p.admin)
	return p
}

func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// killableSession starts a broker in a process of its own (to kill) on a
// new data folder, and a session with a host on a display showing the
// pattern, in which the technician took control. It returns the broker's
// binary and data folder, to start it again on the same archives.
func killableSession(t *testing.T, ctx context.Context, ticket string) (bin, dataDir string, bp *killableBroker, sess *client.SessionInfo, j *client.Joined) {
	t.Helper()
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	bin, dataDir = xtest.Build(t, "./broker"), t.TempDir()
	bp = runBrokerProc(t, bin, dataDir)
	_, sess, j, _ = bp.liveSession(t, ctx, display, ticket)
	if ok, _, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatalf("take control: %v", err)
	}
	return bin, dataDir, bp, sess, j
}

// TestRecordingSurvivesKill kills the broker with SIGKILL mid-session:
// after a restart the archive is marked incomplete, keeps the video sealed
// before the kill, and verifies.
func TestRecordingSurvivesKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	bin, dataDir, bp, sess, j := killableSession(t, ctx, "INC-KILL")
	// Past two segment boundaries (4 s each), with the pointer moving.
	start := time.Now()
	for i := 0; time.Since(start) < 9*time.Second; i++ {
		send(t, ctx, j, protocol.InputEvent{Kind: protocol.InputMove, X: 50 + i%500, Y: 50 + i%300})
		time.Sleep(40 * time.Millisecond)
	}
	killedAt := time.Now()
	bp.cmd.Process.Signal(syscall.SIGKILL)
	bp.cmd.Wait()

	bp2 := runBrokerProc(t, bin, dataDir)
	api := newAPIClient(t, bp2.url, bp2.ca, bp.admin.APIKey)
	// The session the killed broker left live is over, and says why.
	var after struct {
		State     string `json:"state"`
		EndReason string `json:"end_reason"`
	}
	if code := api.call(t, "GET", "/api/v1/sessions/"+sess.ID, &after); code != 200 || after.State != "ended" || !strings.Contains(after.EndReason, "broker stopped") {
		t.Errorf("after the restart the session is %d %+v", code, after)
	}
	rec := waitRecording(t, api, sess.ID, record.StateIncomplete)
	var sealedMS int64
	for _, p := range rec.Manifest.Parts {
		if p.Kind == record.KindVideo {
			sealedMS = max(sealedMS, p.StartMS+p.DurationMS)
		}
	}
	recorded := killedAt.Sub(rec.Manifest.StartedAt)
	lost := recorded - time.Duration(sealedMS)*time.Millisecond
	t.Logf("killed %.1f s into the recording; sealed video covers %.1f s; lost %.1f s", recorded.Seconds(), float64(sealedMS)/1000, lost.Seconds())
	if sealedMS == 0 {
		t.Fatal("no sealed video survived the kill")
	}
	if lost > 6*time.Second {
		t.Errorf("lost %v of video to the kill; at most a segment (4 s) and change is expected", lost)
	}
	var rep struct {
		OK       bool             `json:"ok"`
		Problems []record.Problem `json:"problems"`
		Warnings []record.Problem `json:"warnings"`
	}
	if code := api.call(t, "POST", "/api/v1/recordings/"+sess.ID+"/verify", &rep); code != 200 || !rep.OK {
		t.Fatalf("verify after the kill: %d %+v", code, rep)
	}
	if len(rep.Warnings) == 0 {
		t.Error("no warning that the archive is incomplete")
	}
	// The sealed video still plays: its parts are served.
	for _, p := range rec.Manifest.Parts {
		if p.Kind == record.KindVideo {
			var data []byte
			if code := api.call(t, "GET", "/api/v1/recordings/"+sess.ID+"/parts/"+p.Name, &data); code != 200 || int64(len(data)) != p.Size {
				t.Errorf("part %s: %d, %d bytes", p.Name, code, len(data))
			}
		}
	}
}

// TestRecordingRetention: archives older than the retention period are
// deleted, the deletion is in the session's audit trail, and the API says
// the recording is gone rather than missing.
func TestRecordingRetention(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dataDir := ""
	b := startBrokerWith(t, func(c *server.Config) {
		c.Recording.RetentionDays = 2
		dataDir = c.DataDir
	})
	sess, _ := recordBriefly(t, ctx, b, display, "INC-RET")
	api := newAPIClient(t, b.URL(), b.CAFile(), b.admin.APIKey)

	b.advance(36 * time.Hour)
	if got := b.PruneRecordings(ctx); len(got) != 0 {
		t.Fatalf("deleted %v before the retention period ended", got)
	}
	b.advance(24 * time.Hour)
	if got := b.PruneRecordings(ctx); len(got) != 1 || got[0] != sess.ID {
		t.Fatalf("deleted %v, want %s", got, sess.ID)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "recordings", sess.ID)); !os.IsNotExist(err) {
		t.Errorf("archive still on disk: %v", err)
	}
	if code := api.call(t, "GET", "/api/v1/recordings/"+sess.ID, nil); code != http.StatusGone {
		t.Errorf("GET deleted recording: %d, want 410", code)
	}
	var trail struct {
		Events []struct {
			Type   string          `json:"type"`
			Detail json.RawMessage `json:"detail"`
		} `json:"events"`
	}
	api.call(t, "GET", "/api/v1/sessions/"+sess.ID+"/events", &trail)
	found := false
	for _, e := range trail.Events {
		if e.Type == "recording.deleted" && strings.Contains(string(e.Detail), `"retention"`) {
			found = true
		}
	}
	if !found {
		t.Error("the deletion is not in the audit trail")
	}
}

// TestEncryptedRecording: with an encryption key configured, the archive
// on disk is unreadable, the API still plays it, `broker verify` checks it
// with and without the key, and `broker decrypt` turns the downloaded zip
// into a copy that verifies and plays.
func TestEncryptedRecording(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	keyFile := filepath.Join(t.TempDir(), "recording.key")
	os.WriteFile(keyFile, []byte(strings.Repeat("5a", 32)+"\n"), 0o600)
	dataDir := ""
	b := startBrokerWith(t, func(c *server.Config) {
		c.Recording.EncryptionKeyFile = keyFile
		dataDir = c.DataDir
	})
	sess, rec := recordBriefly(t, ctx, b, display, "INC-ENC")
	api := newAPIClient(t, b.URL(), b.CAFile(), b.admin.APIKey)
	if !rec.Manifest.Encrypted {
		t.Fatal("the manifest does not say encrypted")
	}
	archive := filepath.Join(dataDir, "recordings", sess.ID)
	raw, _ := os.ReadFile(filepath.Join(archive, record.EventsFile))
	if bytes.Contains(raw, []byte("consent.granted")) {
		t.Error("events.jsonl is readable on disk")
	}
	var events struct {
		Events []record.Event `json:"events"`
	}
	if code := api.call(t, "GET", "/api/v1/recordings/"+sess.ID+"/events", &events); code != 200 || len(events.Events) < 4 {
		t.Fatalf("events through the API: %d, %d events", code, len(events.Events))
	}
	for _, p := range rec.Manifest.Parts {
		if p.Kind == record.KindVideo {
			var data []byte
			if code := api.call(t, "GET", "/api/v1/recordings/"+sess.ID+"/parts/"+p.Name, &data); code != 200 || !bytes.HasPrefix(data, []byte{0x1a, 0x45, 0xdf, 0xa3}) {
				t.Errorf("segment %s through the API: %d, not WebM", p.Name, code)
			}
			break
		}
	}
	bin := xtest.Build(t, "./broker")
	out, err := exec.Command(bin, "verify", "-data", dataDir, archive).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hash chain was not checked") || strings.Contains(string(out), "event chain are intact") ||
		!strings.Contains(string(out), "the event chain was not checked") {
		t.Errorf("verify without the key says what it checked: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "verify", "-data", dataDir, "-encryption-key", keyFile, archive).CombinedOutput()
	if err != nil || strings.Contains(string(out), "not checked") || !strings.Contains(string(out), "verified") {
		t.Errorf("verify with the key: %v\n%s", err, out)
	}

	// The zip a supervisor downloads is decrypted away from the broker into
	// a copy that verify checks and whose video a player opens.
	var zipData []byte
	if code := api.call(t, "GET", "/api/v1/recordings/"+sess.ID+"/download", &zipData); code != 200 {
		t.Fatalf("download: %d", code)
	}
	work := t.TempDir()
	downloaded := filepath.Join(work, "tether-"+sess.ID+".zip")
	os.WriteFile(downloaded, zipData, 0o600)
	run := func(args ...string) (string, int) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	clear := filepath.Join(work, "clear")
	if out, code := run("decrypt", "-encryption-key", keyFile, downloaded, clear); code != 0 {
		t.Fatalf("broker decrypt: exit %d\n%s", code, out)
	}
	if out, code := run("verify", "-data", dataDir, clear); code != 0 || !strings.Contains(out, "verified (decrypted copy)") {
		t.Errorf("verify the decrypted copy: exit %d\n%s", code, out)
	}
	if events, _ := os.ReadFile(filepath.Join(clear, record.EventsFile)); !bytes.Contains(events, []byte("consent.granted")) {
		t.Errorf("the decrypted events do not read in the clear:\n%.300s", events)
	}
	segments := 0
	for _, p := range rec.Manifest.Parts {
		if p.Kind != record.KindVideo {
			continue
		}
		segments++
		f, err := os.Open(filepath.Join(clear, p.Name))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Header  webm.EBMLHeader `ebml:"EBML"`
			Segment webm.Segment    `ebml:"Segment"`
		}
		err = ebml.Unmarshal(f, &doc)
		f.Close()
		frames := 0
		for _, c := range doc.Segment.Cluster {
			frames += len(c.SimpleBlock)
		}
		if err != nil || doc.Header.DocType != "webm" || len(doc.Segment.Tracks.TrackEntry) != 1 ||
			doc.Segment.Tracks.TrackEntry[0].CodecID != "V_VP8" || int64(frames) != p.Frames {
			t.Errorf("decrypted %s is not a playable WebM file of %d frames: %v, %q, %d frames", p.Name, p.Frames, err, doc.Header.DocType, frames)
		}
	}
	if segments == 0 {
		t.Error("the recording has no video")
	}
	zipped := filepath.Join(work, "clear.zip")
	if out, code := run("decrypt", "-encryption-key", keyFile, downloaded, zipped); code != 0 {
		t.Fatalf("broker decrypt to a zip: exit %d\n%s", code, out)
	}
	if out, code := run("verify", "-data", dataDir, zipped); code != 0 || !strings.Contains(out, "verified (decrypted copy)") {
		t.Errorf("verify the zipped decrypted copy: exit %d\n%s", code, out)
	}

	// Refused, with a reason and nothing written: an output that exists,
	// the wrong key, an archive that is not encrypted, a damaged download.
	before, _ := os.ReadFile(zipped)
	if out, code := run("decrypt", "-encryption-key", keyFile, downloaded, zipped); code != 2 || !strings.Contains(out, "already exists") {
		t.Errorf("decrypt onto an existing file: exit %d\n%s", code, out)
	}
	if after, _ := os.ReadFile(zipped); !bytes.Equal(before, after) {
		t.Error("an existing file was overwritten")
	}
	otherKey := filepath.Join(work, "other.key")
	os.WriteFile(otherKey, []byte(strings.Repeat("a5", 32)+"\n"), 0o600)
	if out, code := run("decrypt", "-encryption-key", otherKey, downloaded, filepath.Join(work, "wrong")); code != 2 || !strings.Contains(out, "encrypted with another one") {
		t.Errorf("decrypt with the wrong key: exit %d\n%s", code, out)
	}
	if out, code := run("decrypt", "-encryption-key", keyFile, clear, filepath.Join(work, "again")); code != 2 || !strings.Contains(out, "already a decrypted copy") {
		t.Errorf("decrypt a decrypted copy: exit %d\n%s", code, out)
	}
	damaged := bytes.Clone(zipData)
	i := bytes.Index(damaged, []byte(sess.ID+"/video-0001.webm")) + 200 // inside the segment's bytes, past its zip header
	damaged[i] ^= 1
	damagedZip := filepath.Join(work, "damaged.zip")
	os.WriteFile(damagedZip, damaged, 0o600)
	if out, code := run("decrypt", "-encryption-key", keyFile, damagedZip, filepath.Join(work, "damaged")); code != 1 || !strings.Contains(out, "video-0001.webm") || !strings.Contains(out, "not intact") {
		t.Errorf("decrypt a damaged download: exit %d\n%s", code, out)
	}
	for _, name := range []string{"wrong", "again", "damaged"} {
		if _, err := os.Stat(filepath.Join(work, name)); err == nil {
			t.Errorf("a refused decrypt wrote %s", name)
		}
	}
}

// castInput joins the input events ("i") of an asciicast v2 transcript.
func castInput(t *testing.T, cast []byte) string {
	t.Helper()
	var typed strings.Builder
	for _, ev := range castEvents(t, cast) {
		if ev[0] == "i" {
			typed.WriteString(ev[1])
		}
	}
	return typed.String()
}

// castSizeAt returns the terminal size ("COLSxROWS") in effect where an
// asciicast v2 transcript first prints want: its header's, or the last
// resize ("r") before.
func castSizeAt(t *testing.T, cast []byte, want string) string {
	t.Helper()
	var header struct{ Width, Height int }
	if err := json.Unmarshal(bytes.SplitN(cast, []byte("\n"), 2)[0], &header); err != nil {
		t.Fatalf("transcript header: %v", err)
	}
	size := fmt.Sprintf("%dx%d", header.Width, header.Height)
	for _, ev := range castEvents(t, cast) {
		switch {
		case ev[0] == "r":
			size = ev[1]
		case ev[0] == "o" && strings.Contains(ev[1], want):
			return size
		}
	}
	t.Fatalf("the transcript never prints %q", want)
	return ""
}

// castEvents returns the kind and data of an asciicast v2 transcript's
// events.
func castEvents(t *testing.T, cast []byte) [][2]string {
	t.Helper()
	var events [][2]string
	for i, line := range bytes.Split(bytes.TrimSpace(cast), []byte("\n"))[1:] {
		var ev []any
		if err := json.Unmarshal(line, &ev); err != nil || len(ev) != 3 {
			t.Fatalf("transcript event %d: %q: %v", i+1, line, err)
		}
		kind, _ := ev[1].(string)
		data, _ := ev[2].(string)
		events = append(events, [2]string{kind, data})
	}
	return events
}

// TestEncryptedRecordingWithoutKey: a broker started again without the
// recording encryption key, or with another one, warns at start and names
// the flag to pass; and it says so when an archive is opened, instead of
// calling it unreadable.
func TestEncryptedRecordingWithoutKey(t *testing.T) {
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bin := xtest.Build(t, "./broker")
	dataDir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "recording.key")
	os.WriteFile(keyFile, []byte(strings.Repeat("5a", 32)+"\n"), 0o600)
	bp := runBrokerProc(t, bin, dataDir, "-recording-encryption-key", keyFile)
	if strings.Contains(bp.stdout.String(), "Warning") {
		t.Errorf("a first start with the key warns:\n%s", bp.stdout)
	}
	c, sess, j, host := bp.liveSession(t, ctx, display, "INC-NOKEY")
	c.EndSession(ctx, sess.ID)
	j.Close()
	host.wait(t, 15*time.Second)
	waitRecording(t, newAPIClient(t, bp.url, bp.ca, bp.admin.APIKey), sess.ID, record.StateComplete)
	bp.cmd.Process.Signal(syscall.SIGTERM)
	bp.cmd.Wait()

	bp2 := runBrokerProc(t, bin, dataDir)
	if out := bp2.stdout.String(); !strings.Contains(out, "Warning: the broker was started without a recording encryption key, but "+filepath.Join(dataDir, "recordings")+" holds an encrypted recording") ||
		!strings.Contains(out, "Restart the broker with -recording-encryption-key") {
		t.Errorf("a start without the key does not warn on the terminal:\n%s", out)
	}
	// The log reaches the test through a pipe of its own, which may lag
	// behind the terminal's.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		log := bp2.stderr.String()
		if strings.Contains(log, "level=WARN") && strings.Contains(log, "encrypted recordings the broker cannot read") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("a start without the key does not log a warning:\n%s", log)
			break
		}
	}
	api := newAPIClient(t, bp2.url, bp2.ca, bp.admin.APIKey)
	code, out := apiCall(t, api.http, "GET", api.base+"/api/v1/recordings/"+sess.ID+"/events", bp.admin.APIKey, "", nil)
	if e, _ := out["error"].(map[string]any); code != 500 || !strings.Contains(fmt.Sprint(e["message"]), "started without its key") {
		t.Fatalf("events of an encrypted archive without the key: %d %v", code, out)
	}
	bp2.cmd.Process.Signal(syscall.SIGTERM)
	bp2.cmd.Wait()

	otherKey := filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(otherKey, []byte(strings.Repeat("a5", 32)+"\n"), 0o600)
	bp3 := runBrokerProc(t, bin, dataDir, "-recording-encryption-key", otherKey)
	if out := bp3.stdout.String(); !strings.Contains(out, "holds an encrypted recording that the key in "+otherKey+" does not open") ||
		!strings.Contains(out, "Restart the broker with -recording-encryption-key") {
		t.Errorf("a start with another key does not warn:\n%s", out)
	}
	bp3.cmd.Process.Signal(syscall.SIGTERM)
	bp3.cmd.Wait()

	bp4 := runBrokerProc(t, bin, dataDir, "-recording-encryption-key", keyFile)
	if strings.Contains(bp4.stdout.String(), "Warning") || strings.Contains(bp4.stderr.String(), "level=WARN") {
		t.Errorf("a start with the right key warns:\n%s\n%s", bp4.stdout, bp4.stderr)
	}
}

// TestDiskFullEndIsWrittenLater: with the broker's whole data directory on
// a disk that fills mid-session, the session ends as it could not be
// recorded; once there is room again the session reads ended, with that
// reason and when it ended, not active until a restart, and its recording
// failed, with why, not still recording (until a restart called it
// "incomplete", stopped by the broker).
func TestDiskFullEndIsWrittenLater(t *testing.T) {
	mnt := smallDisk(t, 3)
	display := xtest.StartXvfb(t, 640, 480)
	xtest.StartPattern(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := startBrokerWith(t, func(c *server.Config) {
		c.DataDir = mnt
		c.Recording.SegmentDuration = 500 * time.Millisecond
	})
	c := b.client(t)
	sess, err := c.CreateSession(ctx, "INC-FULL-DB")
	if err != nil {
		t.Fatal(err)
	}
	startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), sess.Code)
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Screenshot(ctx); err != nil {
		t.Fatalf("no video: %v", err)
	}
	filler := filepath.Join(mnt, "filler")
	fill(t, filler)
	select {
	case <-j.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the session went on with its archive unwritable")
	}
	ended := time.Now()
	os.Remove(filler)
	hc := newSpecChecker(t, b).client()
	var out map[string]any
	waitFor(t, 10*time.Second, func() bool {
		_, out = apiCall(t, hc, "GET", b.URL()+"/api/v1/sessions/"+sess.ID, b.admin.APIKey, "", nil)
		return out["state"] == "ended"
	})
	at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(out["ended_at"]))
	if reason := fmt.Sprint(out["end_reason"]); !strings.Contains(reason, "could not be recorded") || at.Sub(ended).Abs() > 5*time.Second {
		t.Errorf("the session ended %v for %q; want about %v, because it could not be recorded", out["ended_at"], reason, ended)
	}
	api := newAPIClient(t, b.URL(), b.CAFile(), b.admin.APIKey)
	if rec := waitRecording(t, api, sess.ID, record.StateFailed); !strings.Contains(rec.Note, "no space left") {
		t.Errorf("the failed recording's note %q does not say the disk is full", rec.Note)
	}
	// The end written late says why in a word too, as ticket systems read it.
	var trail struct {
		Events []struct {
			Type   string
			Detail map[string]any
		}
	}
	if code := api.call(t, "GET", "/api/v1/sessions/"+sess.ID+"/events", &trail); code != 200 {
		t.Fatalf("events: %d", code)
	}
	for _, e := range trail.Events {
		if e.Type == "session.ended" && e.Detail["cause"] != signal.EndedRecordingFailed {
			t.Errorf("the end written late: %v, want cause %s", e.Detail, signal.EndedRecordingFailed)
		}
	}
}

// TestRecordingUnsealedLinesAreNotPlayed: a broker killed mid-session
// leaves an incomplete archive. A consent.granted line appended to its
// event log, chained to the last line as anyone who can write the
// recordings folder can chain it, is not among the recording's events nor
// in its served parts, and verify names it as not covered by the
// signature. A range of a video segment is served from the sealed bytes.
func TestRecordingUnsealedLinesAreNotPlayed(t *testing.T) {
	// Mostly waiting for a video segment to be sealed and for a broker to
	// start again: it runs beside the other tests that wait.
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	bin, dataDir, bp, sess, j := killableSession(t, ctx, "INC-FORGE")
	// Killed once a video segment is sealed (the pointer moving), for the
	// range request.
	live := newAPIClient(t, bp.url, bp.ca, bp.admin.APIKey)
	for i := 0; ; i++ {
		send(t, ctx, j, protocol.InputEvent{Kind: protocol.InputMove, X: 50 + i%500, Y: 50 + i%300})
		time.Sleep(40 * time.Millisecond)
		if i%25 != 0 {
			continue
		}
		var rec recordingResp
		live.call(t, "GET", "/api/v1/recordings/"+sess.ID, &rec)
		if rec.Manifest != nil && slices.ContainsFunc(rec.Manifest.Parts, func(p record.Part) bool { return p.Kind == record.KindVideo }) {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no video segment was sealed")
		}
	}
	bp.cmd.Process.Signal(syscall.SIGKILL)
	bp.cmd.Wait()

	bp2 := runBrokerProc(t, bin, dataDir)
	api := newAPIClient(t, bp2.url, bp2.ca, bp.admin.APIKey)
	rec := waitRecording(t, api, sess.ID, record.StateIncomplete)
	var sealed, video record.Part
	for _, p := range rec.Manifest.Parts {
		switch p.Kind {
		case record.KindEvents:
			sealed = p
		case record.KindVideo:
			video = p
		}
	}

	// The forger's line, chained to the last line on disk.
	path := filepath.Join(dataDir, "recordings", sess.ID, record.EventsFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	chain := record.CheckChain(bytes.NewReader(data), sess.ID)
	if chain.Err != nil || chain.Partial {
		t.Fatalf("the event log left by the kill: %+v", chain)
	}
	forged, _ := json.Marshal(record.Event{Seq: chain.Lines + 1, T: 1500, At: rec.Manifest.StartedAt.Add(1500 * time.Millisecond),
		Type: "consent.granted", Actor: "user", Detail: json.RawMessage(`{"granted":["view","control","files","shell"]}`), Prev: chain.Head})
	os.WriteFile(path, append(append(data, forged...), '\n'), 0o600)
	if c := record.CheckChain(bytes.NewReader(append(append(data, forged...), '\n')), sess.ID); c.Err != nil || c.Lines != chain.Lines+1 {
		t.Fatalf("the forged line does not chain: %+v", c)
	}

	var evs struct {
		Events []record.Event `json:"events"`
	}
	if code := api.call(t, "GET", "/api/v1/recordings/"+sess.ID+"/events", &evs); code != 200 {
		t.Fatalf("events: %d", code)
	}
	if int64(len(evs.Events)) != sealed.Lines {
		t.Errorf("the player gets %d events; the manifest seals %d", len(evs.Events), sealed.Lines)
	}
	for _, e := range evs.Events {
		if e.Seq > sealed.Lines {
			t.Errorf("the player gets line %d (%s), past the seal", e.Seq, e.Type)
		}
	}
	var raw []byte
	if code := api.call(t, "GET", "/api/v1/recordings/"+sess.ID+"/parts/"+record.EventsFile, &raw); code != 200 || int64(len(raw)) != sealed.Size {
		t.Errorf("the event log part: %d, %d bytes; sealed %d", code, len(raw), sealed.Size)
	}

	// A range of the segment, and one that reaches past its end.
	segment, _ := os.ReadFile(filepath.Join(dataDir, "recordings", sess.ID, video.Name))
	for _, r := range []struct{ ask, want string }{
		{"bytes=100-199", fmt.Sprintf("bytes 100-199/%d", video.Size)},
		{fmt.Sprintf("bytes=%d-", video.Size-50), fmt.Sprintf("bytes %d-%d/%d", video.Size-50, video.Size-1, video.Size)},
	} {
		req, _ := http.NewRequest("GET", api.base+"/api/v1/recordings/"+sess.ID+"/parts/"+video.Name, nil)
		req.Header.Set("Authorization", "Bearer "+api.key)
		req.Header.Set("Range", r.ask)
		resp, err := api.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var from, to int64
		fmt.Sscanf(r.want, "bytes %d-%d/", &from, &to)
		if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != r.want || !bytes.Equal(body, segment[from:to+1]) {
			t.Errorf("range %s of %s: %d %q, %d bytes; want %s", r.ask, video.Name, resp.StatusCode, resp.Header.Get("Content-Range"), len(body), r.want)
		}
	}

	var rep struct {
		OK            bool             `json:"ok"`
		EventLines    int64            `json:"event_lines"`
		UnsealedLines int64            `json:"unsealed_event_lines"`
		Problems      []record.Problem `json:"problems"`
		Warnings      []record.Problem `json:"warnings"`
	}
	if code := api.call(t, "POST", "/api/v1/recordings/"+sess.ID+"/verify", &rep); code != 200 || !rep.OK {
		t.Fatalf("verify: %d %+v", code, rep)
	}
	if rep.EventLines != sealed.Lines || rep.UnsealedLines < 1 {
		t.Errorf("verify counts %d event lines and %d unsealed; want the %d sealed, and the forged one unsealed", rep.EventLines, rep.UnsealedLines, sealed.Lines)
	}
	// "line N: ..." or "lines M to N: ...", naming the types.
	lineN := regexp.MustCompile(fmt.Sprintf(`\blines? (\d+ to )?%d:`, chain.Lines+1))
	named := false
	for _, w := range rep.Warnings {
		named = named || w.Part == record.EventsFile && lineN.MatchString(w.Message) &&
			strings.Contains(w.Message, `"consent.granted"`) && strings.Contains(w.Message, "not covered by the signature")
	}
	if !named {
		t.Errorf("verify does not name the forged line %d as unsealed: %v", chain.Lines+1, rep.Warnings)
	}
}
