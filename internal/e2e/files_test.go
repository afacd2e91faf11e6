package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// filesSession is a live session whose user allowed view, files and shell,
// with the host's home, shared root and inbox in temporary folders.
type filesSession struct {
	b     *broker
	c     *client.Client
	id    string
	host  *hostProc
	home  string // the user's home, shared for downloads
	inbox string // where uploads land
}

func startFilesSession(t *testing.T, ctx context.Context, hostArgs ...string) *filesSession {
	t.Helper()
	display := xtest.StartXvfb(t, 320, 240)
	b := startBroker(t)
	c := b.client(t)
	sess, err := c.CreateSession(ctx, "INC-FILES", protocol.PermView, protocol.PermFiles, protocol.PermShell)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	fs := &filesSession{b: b, c: c, id: sess.ID, home: home, inbox: filepath.Join(home, "Downloads", "Tether")}
	args := append([]string{"-broker", b.URL(), "-ca", b.CAFile()}, hostArgs...)
	fs.host = runHostEnv(t, display, true, []string{"HOME=" + home, "SHELL=/bin/bash"}, append(args, sess.Code)...)
	return fs
}

// join joins as the technician and waits for the grants.
func (fs *filesSession) join(t *testing.T, ctx context.Context, perms ...string) *client.Joined {
	t.Helper()
	j, err := fs.c.Join(ctx, fs.id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, perms...) }); err != nil {
		t.Fatalf("%v\nhost:\n%s", err, fs.host.stderr.String())
	}
	return j
}

func (fs *filesSession) files(t *testing.T, ctx context.Context) (*client.Joined, *client.Files) {
	t.Helper()
	j := fs.join(t, ctx, protocol.PermFiles)
	f, err := j.Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return j, f
}

// randomFile writes n random bytes and returns the path and SHA-256.
func randomFile(t testing.TB, dir, name string, n int64) (string, string) {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	sum, _, err := client.HashFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, sum
}

type auditEvent struct {
	Type   string
	Actor  string
	Detail map[string]any
}

// pushFrom pushes src through f and says where its progress started: the
// offset the user's computer resumed from.
func pushFrom(ctx context.Context, f *client.Files, src string) (first int64, done protocol.FileMessage, err error) {
	first = -1
	done, err = f.Push(ctx, src, "", func(d, _ int64) {
		if first < 0 {
			first = d
		}
	})
	return first, done, err
}

// auditEvents returns the session's audit trail, in order: the events
// of type typ, or all of them for "".
func auditEvents(t *testing.T, ctx context.Context, b *broker, id, typ string) []auditEvent {
	t.Helper()
	var out struct {
		Events []struct {
			Type   string
			Actor  string
			Detail json.RawMessage
		}
	}
	getJSON(t, ctx, b, b.URL()+"/api/v1/sessions/"+id+"/events", &out)
	var evs []auditEvent
	for _, e := range out.Events {
		if typ != "" && e.Type != typ {
			continue
		}
		ev := auditEvent{Type: e.Type, Actor: e.Actor}
		json.Unmarshal(e.Detail, &ev.Detail)
		evs = append(evs, ev)
	}
	return evs
}

// wantInterrupted waits for the audit trail's file.interrupted of the
// transfer of name, and checks that it says why it stopped: reason.
func (fs *filesSession) wantInterrupted(t *testing.T, ctx context.Context, name, reason string) {
	t.Helper()
	var got []string
	waitFor(t, 10*time.Second, func() bool {
		got = nil
		for _, e := range auditEvents(t, ctx, fs.b, fs.id, "file.interrupted") {
			if e.Detail["name"] == name {
				got = append(got, fmt.Sprint(e.Detail["reason"]))
			}
		}
		return len(got) > 0
	})
	if len(got) != 1 || got[0] != reason {
		t.Errorf("the audit trail says %s stopped because %q, want %q", name, got, reason)
	}
}

// TestFileTransfer100MB: 100 MB up to the user and 100 MB back, each
// verified by SHA-256 on both ends and recorded in the audit trail; a
// second upload of the same name never overwrites the first.
func TestFileTransfer100MB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	_, f := fs.files(t, ctx)
	local := t.TempDir()
	const size = 100 << 20

	src, sum := randomFile(t, local, "tool.bin", size)
	start := time.Now()
	var calls int
	done, err := f.Push(ctx, src, "", func(d, total int64) { calls++ })
	if err != nil {
		t.Fatalf("push: %v\nhost:\n%s", err, fs.host.stderr.String())
	}
	up := time.Since(start)
	t.Logf("upload: 100 MB in %v (%.1f MB/s)", up, size/up.Seconds()/1e6)
	if calls < 10 {
		t.Errorf("progress was reported %d times", calls)
	}
	want := filepath.Join(fs.inbox, "tool.bin")
	if done.Path != want || done.SHA256 != sum || done.Size != size {
		t.Fatalf("host reported %+v, want %s with %s", done, want, sum)
	}
	if got, n, err := client.HashFile(want); err != nil || got != sum || n != size {
		t.Fatalf("the user's copy: %s, %d bytes, %v; want %s", got, n, err, sum)
	}
	fs.host.waitOutput(t, "Receiving tool.bin: [####################] done, 100.0 MiB", 1, 5*time.Second)

	// The same name again lands next to it.
	small, smallSum := randomFile(t, local, "small.txt", 1000)
	if done, err := f.Push(ctx, small, "tool.bin", nil); err != nil || done.Path != filepath.Join(fs.inbox, "tool (2).bin") {
		t.Fatalf("second upload: %+v, %v", done, err)
	}
	if got, _, _ := client.HashFile(want); got != sum {
		t.Fatal("the first tool.bin was overwritten")
	}

	// Download 100 MB from the user's home.
	remote, rsum := randomFile(t, fs.home, "big.log", size)
	_ = remote
	dst := filepath.Join(local, "big.log")
	start = time.Now()
	got, err := f.Pull(ctx, "big.log", dst, nil)
	if err != nil {
		t.Fatalf("pull: %v\nhost:\n%s", err, fs.host.stderr.String())
	}
	down := time.Since(start)
	t.Logf("download: 100 MB in %v (%.1f MB/s)", down, size/down.Seconds()/1e6)
	if got.SHA256 != rsum {
		t.Fatalf("host hashed %s, file is %s", got.SHA256, rsum)
	}
	if h, n, err := client.HashFile(dst); err != nil || h != rsum || n != size {
		t.Fatalf("local copy: %s, %d, %v", h, n, err)
	}
	if _, err := os.Stat(dst + client.PartSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the partial download was left behind: %v", err)
	}
	// An existing local file is never replaced.
	if _, err := f.Pull(ctx, "big.log", dst, nil); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("pull over an existing file: %v", err)
	}

	waitFor(t, 5*time.Second, func() bool { return len(auditEvents(t, ctx, fs.b, fs.id, "file.transfer")) == 3 })
	evs := auditEvents(t, ctx, fs.b, fs.id, "file.transfer")
	checks := []struct{ name, dir, sum string }{{"tool.bin", "upload", sum}, {"tool (2).bin", "upload", smallSum}, {"big.log", "download", rsum}}
	for i, c := range checks {
		d := evs[i].Detail
		// The broker's own hash of what it relayed stands next to the host's.
		if d["name"] != c.name || d["direction"] != c.dir || d["sha256"] != c.sum || d["relayed_sha256"] != c.sum || d["path"] == "" {
			t.Errorf("audit event %d: %v, want %s %s %s", i, d, c.name, c.dir, c.sum)
		}
	}
	if evs[0].Detail["size"] != float64(size) {
		t.Errorf("audit size: %v", evs[0].Detail["size"])
	}
}

// TestFileResume: a connection dropped mid-transfer; after the technician
// rejoins, the upload and the download carry on where they stopped and
// the result is intact.
func TestFileResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	local := t.TempDir()
	const size = 40 << 20

	src, sum := randomFile(t, local, "patch.bin", size)
	j, f := fs.files(t, ctx)
	cutDone := false
	_, err := f.Push(ctx, src, "", func(d, _ int64) {
		if d > 25<<20 && !cutDone {
			cutDone = true
			j.Close() // the technician's network goes away
		}
	})
	if err == nil {
		t.Fatal("the cut upload succeeded")
	}
	// The user is told the file stopped coming, and why.
	fs.host.waitOutput(t, "Receiving patch.bin: stopped: the technician left", 1, 10*time.Second)
	waitFor(t, 10*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(fs.inbox, ".tether-*.part"))
		return len(m) == 1
	})
	_, f2 := fs.files(t, ctx)
	first, done, err := pushFrom(ctx, f2, src)
	if err != nil {
		t.Fatalf("resumed push: %v\nhost:\n%s", err, fs.host.stderr.String())
	}
	t.Logf("upload resumed at %d of %d bytes", first, size)
	if first <= 0 {
		t.Fatalf("the upload started over at %d bytes instead of resuming", first)
	}
	if h, _, _ := client.HashFile(filepath.Join(fs.inbox, "patch.bin")); h != sum || done.SHA256 != sum {
		t.Fatalf("resumed upload is damaged: %s, want %s", h, sum)
	}
	if m, _ := filepath.Glob(filepath.Join(fs.inbox, ".tether-*")); len(m) != 0 {
		t.Fatalf("partial files left: %v", m)
	}

	// Download, cut, resume.
	_, rsum := randomFile(t, fs.home, "trace.log", size)
	dst := filepath.Join(local, "trace.log")
	j3, f3 := fs.files(t, ctx)
	cutDone = false
	_, err = f3.Pull(ctx, "trace.log", dst, func(d, _ int64) {
		if d > 25<<20 && !cutDone {
			cutDone = true
			j3.Close()
		}
	})
	if err == nil {
		t.Fatal("the cut download succeeded")
	}
	if !cutDone {
		t.Fatalf("the download failed before it was cut: %v\nhost:\n%s", err, fs.host.stderr.String())
	}
	st, err := os.Stat(dst + client.PartSuffix)
	if err != nil || st.Size() < 1<<20 {
		t.Fatalf("no partial download kept: %v", err)
	}
	_, f4 := fs.files(t, ctx)
	first = -1
	if _, err := f4.Pull(ctx, "trace.log", dst, func(d, _ int64) {
		if first < 0 {
			first = d
		}
	}); err != nil {
		t.Fatalf("resumed pull: %v", err)
	}
	t.Logf("download resumed at %d of %d bytes", first, size)
	if first <= 0 {
		t.Fatalf("the download started over at %d", first)
	}
	if h, _, _ := client.HashFile(dst); h != rsum {
		t.Fatal("resumed download is damaged")
	}

	// The resumed transfers began on earlier channels: the broker cannot
	// vouch for the whole file and says nothing.
	waitFor(t, 5*time.Second, func() bool { return len(auditEvents(t, ctx, fs.b, fs.id, "file.transfer")) == 2 })
	for _, e := range auditEvents(t, ctx, fs.b, fs.id, "file.transfer") {
		if sum, ok := e.Detail["relayed_sha256"]; ok {
			t.Errorf("a resumed transfer's audit event has the broker's hash %v: %v", sum, e.Detail)
		}
	}

	// A cut upload nobody resumes does not outlive the session.
	j5, f5 := fs.files(t, ctx)
	cutDone = false
	f5.Push(ctx, src, "again.bin", func(d, _ int64) {
		if d > 25<<20 && !cutDone {
			cutDone = true
			j5.Close()
		}
	})
	waitFor(t, 10*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(fs.inbox, ".tether-*.part"))
		return len(m) == 1
	})
	if err := fs.c.EndSession(ctx, fs.id); err != nil {
		t.Fatal(err)
	}
	fs.host.wait(t, 15*time.Second)
	if m, _ := filepath.Glob(filepath.Join(fs.inbox, ".tether-*")); len(m) != 0 {
		t.Fatalf("partial uploads left after the session: %v", m)
	}
}

// TestFilesQuestionNamesFolders: the question for files tells the user
// which folder a technician may fetch any file from, their home folder
// unless the host was given another, and where files sent to them land.
func TestFilesQuestionNamesFolders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	fs.files(t, ctx)
	fs.host.waitOutput(t, "files     fetch any file in your home folder, and send you files (saved in ~/Downloads/Tether)", 1, 5*time.Second)

	shared := t.TempDir()
	other := startFilesSession(t, ctx, "-files-root", shared, "-files-inbox", filepath.Join(shared, "in"))
	other.files(t, ctx)
	other.host.waitOutput(t, "files     fetch any file in "+shared+", and send you files (saved in "+filepath.Join(shared, "in")+")", 1, 5*time.Second)
}

// TestFileSentSaysWhich: when a technician fetches one of the user's
// files, the user's terminal names it as they know it, folder and all:
// "id_test" alone does not tell them it was their SSH key.
func TestFileSentSaysWhich(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	if err := os.MkdirAll(filepath.Join(fs.home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fs.home, ".ssh", "id_test"), []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, f := fs.files(t, ctx)
	if _, err := f.Pull(ctx, ".ssh/id_test", filepath.Join(t.TempDir(), "got"), nil); err != nil {
		t.Fatal(err)
	}
	fs.host.waitOutput(t, "Sending ~/.ssh/id_test: [####################] done, 7 bytes", 1, 5*time.Second)
}

// TestFilePullKeptPart: a download carries on from the part an earlier
// one left, also when the file is shorter now than that part; a part
// that did not come from this file is found out by the hash and
// discarded, saying so; and a link where the part would be is refused,
// leaving the file it points to as it was.
func TestFilePullKeptPart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	if err := os.WriteFile(filepath.Join(fs.home, "app.log"), []byte("line one\nline two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, f := fs.files(t, ctx)
	local := filepath.Join(t.TempDir(), "app.log")
	pull := func(part string) error {
		t.Helper()
		if err := os.WriteFile(local+client.PartSuffix, []byte(part), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := f.Pull(ctx, "app.log", local, nil)
		return err
	}

	// Cut off while the log was longer; it was rotated down since.
	if err := pull("line one\nline two\nline three\n"); err != nil {
		t.Fatalf("pull with a longer part kept: %v", err)
	}
	if got, _ := os.ReadFile(local); string(got) != "line one\nline two\n" {
		t.Fatalf("pulled %q", got)
	}
	os.Remove(local)

	// A part of another version of the file.
	err := pull("LINE ONE\nline two\nline three\n")
	var fe *client.FileError
	if !errors.As(err, &fe) || fe.Code != protocol.FileErrHash || !strings.Contains(fe.Message, "run the same command again") {
		t.Fatalf("pull with a part of another version: %v", err)
	}
	if _, err := os.Stat(local + client.PartSuffix); err == nil {
		t.Error("the part of another version was kept")
	}
	if _, err := f.Pull(ctx, "app.log", local, nil); err != nil {
		t.Fatalf("the same command again: %v", err)
	}
	os.Remove(local)

	// A link where the part would be.
	victim := filepath.Join(t.TempDir(), "thesis.txt")
	if err := os.WriteFile(victim, []byte("years of work"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, local+client.PartSuffix); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Pull(ctx, "app.log", local, nil); err == nil || !strings.Contains(err.Error(), "not a partial download") {
		t.Errorf("pull through a link: %v", err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "years of work" {
		t.Errorf("the file the link points to now holds %q", got)
	}
}

// TestFileReceivedWhere: the user's terminal says in plain words what the
// technician may do, and where a file sent to them was saved, also when
// it was saved under another name next to one of the same name.
func TestFileReceivedWhere(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	_, f := fs.files(t, ctx)
	fs.host.waitOutput(t, "Shared: admin (admin) can see your screen, send and fetch files, and run commands as you in a terminal.", 1, 5*time.Second)
	for _, saved := range []string{"~/Downloads/Tether/notes.txt", "~/Downloads/Tether/notes (2).txt"} {
		src, _ := randomFile(t, t.TempDir(), "notes.txt", 1000) // another file each time
		if _, err := f.Push(ctx, src, "", nil); err != nil {
			t.Fatal(err)
		}
		fs.host.waitOutput(t, "done, 1000 bytes, saved as "+saved, 1, 5*time.Second)
	}
}

// TestFileRefusals: every refusal is a clear error, loses nothing, and is
// in the audit trail; the channel keeps working after each.
func TestFileRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const maxSize = 8 << 20
	fs := startFilesSession(t, ctx, "-max-file-size", "8388608")
	local := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("not yours"), 0o600)
	must(0, os.Symlink(outside, filepath.Join(fs.home, "escape")))
	must(0, os.Symlink("/dev/zero", filepath.Join(fs.home, "zero")))
	must(0, syscall.Mkfifo(filepath.Join(fs.home, "pipe"), 0o600))
	must(0, os.Mkdir(filepath.Join(fs.home, "docs"), 0o755))
	must(0, os.WriteFile(filepath.Join(fs.home, "docs", "ok.txt"), []byte("fine"), 0o644))
	must(0, os.Symlink("docs/ok.txt", filepath.Join(fs.home, "inside-link")))
	must(0, os.Link(filepath.Join(outside, "secret.txt"), filepath.Join(fs.home, "hard-link.txt")))
	_, f := fs.files(t, ctx)

	for _, tt := range []struct{ path, code, says string }{
		{"../../etc/passwd", protocol.FileErrPath, "leaves the shared folder"},
		{"/etc/passwd", protocol.FileErrPath, "absolute"},
		{"escape/secret.txt", protocol.FileErrPath, "outside the shared folder"},
		{"zero", protocol.FileErrPath, "outside the shared folder"},
		{"hard-link.txt", protocol.FileErrPath, "Ask the user to copy it into the shared folder"},
		{"pipe", protocol.FileErrSpecial, "only regular files"},
		{"docs", protocol.FileErrSpecial, "a folder"},
		{"missing.txt", protocol.FileErrNotFound, "does not exist"},
		// Terminal escapes in a path would clear the user's terminal and
		// print anything in its place.
		{"\x1b[2J\x1b[Hgone.txt", protocol.FileErrNotFound, "does not exist"},
	} {
		_, err := f.Pull(ctx, tt.path, filepath.Join(local, "out"), nil)
		var fe *client.FileError
		if !errors.As(err, &fe) || fe.Code != tt.code || !strings.Contains(fe.Message, tt.says) {
			t.Errorf("pull %q: %v, want %s saying %q", tt.path, err, tt.code, tt.says)
		}
		if _, err := os.Stat(filepath.Join(local, "out"+client.PartSuffix)); err == nil {
			t.Errorf("pull %q left a partial file", tt.path)
		}
	}
	// The user reads on their terminal what was asked for and refused.
	fs.host.waitOutput(t, "Sending ../../etc/passwd: stopped: ", 1, 5*time.Second)
	if out := fs.host.waitOutput(t, "[Hgone.txt: stopped: ", 1, 5*time.Second); strings.Contains(out, "\x1b[") {
		t.Errorf("a path the technician asked for reached the user's terminal with its escapes:\n%q", out)
	}
	if _, err := f.List(ctx, "escape"); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("listing through a symlink out: %v", err)
	}
	// A symlink that stays inside is fine, and the listing shows kinds.
	if _, err := f.Pull(ctx, "inside-link", filepath.Join(local, "ok.txt"), nil); err != nil {
		t.Errorf("symlink inside the root: %v", err)
	}
	entries, err := f.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, e := range entries {
		kinds[e.Name] = e.Kind
	}
	if kinds["docs"] != "dir" || kinds["pipe"] != "special" || kinds["escape"] != "link" {
		t.Errorf("listing kinds: %v", kinds)
	}

	src, _ := randomFile(t, local, "a.bin", 1000)
	for _, tt := range []struct{ name, code string }{
		{"../evil.sh", protocol.FileErrPath},
		{"..", protocol.FileErrPath},
		{"a\x00b", protocol.FileErrPath},
		{"bad\nname", protocol.FileErrPath},
		{"invoice\u202efdp.exe", protocol.FileErrPath}, // reads "invoiceexe.pdf"
		{".bashrc", protocol.FileErrPath},              // hidden, and run by the user's shell
	} {
		_, err := f.Push(ctx, src, tt.name, nil)
		var fe *client.FileError
		if !errors.As(err, &fe) || fe.Code != tt.code {
			t.Errorf("push as %q: %v, want %s", tt.name, err, tt.code)
		}
	}
	// Too long a name: the user's computer says so in words, through the
	// broker, which lets a long name pass for the host to refuse.
	var long *client.FileError
	if _, err := f.Push(ctx, src, strings.Repeat("x", 300), nil); !errors.As(err, &long) || long.Code != protocol.FileErrPath ||
		!strings.HasPrefix(long.Message, "The file's name is too long: 300 bytes, where the user's computer allows at most 255") || !strings.Contains(long.Message, "Rename it") {
		t.Errorf("push with a 300-byte name: %v", err)
	}
	big, _ := randomFile(t, local, "big.bin", maxSize+1)
	if _, err := f.Push(ctx, big, "", nil); err == nil || !strings.Contains(err.Error(), protocol.FileErrTooLarge) {
		t.Errorf("push over the limit: %v", err)
	}
	// The limit the user's computer announced refuses a file before it is
	// read through for its hash (seconds for 16 GiB).
	huge := filepath.Join(local, "disk.img")
	must(0, os.WriteFile(huge, nil, 0o644))
	must(0, os.Truncate(huge, 16<<30)) // sparse
	start := time.Now()
	_, err = f.Push(ctx, huge, "", nil)
	if want := fmt.Sprintf("disk.img is %d bytes; the limit is %d.", 16<<30, maxSize); err == nil || !strings.Contains(err.Error(), want) || time.Since(start) > 2*time.Second {
		t.Errorf("push of 16 GiB over an 8 MiB limit: %v after %s, want %q at once", err, time.Since(start), want)
	}
	start = time.Now()
	if out, err := fs.b.viewer(t, "push", "-session", fs.id, huge).CombinedOutput(); err == nil || !strings.Contains(string(out), "the limit is 8388608") ||
		strings.Contains(string(out), "Computing") || time.Since(start) > 10*time.Second {
		t.Errorf("viewer push of 16 GiB over an 8 MiB limit, after %s: %v\n%s", time.Since(start), err, out)
	}
	if m, _ := filepath.Glob(filepath.Join(fs.inbox, "*")); len(m) != 0 {
		t.Errorf("refused uploads left files: %v", m)
	}
	// Cancelled uploads leave nothing behind. (Cancelled as the user's
	// computer is ready: a cancel goes behind the megabytes already on
	// their way, and an upload they complete is saved.)
	mid, _ := randomFile(t, local, "mid.bin", 6<<20)
	cut, stop := context.WithCancel(ctx)
	if _, err := f.Push(cut, mid, "", func(d, _ int64) { stop() }); err == nil {
		t.Fatal("cancelled push succeeded")
	}
	waitFor(t, 5*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(fs.inbox, "*"))
		hidden, _ := filepath.Glob(filepath.Join(fs.inbox, ".tether-*"))
		return len(m)+len(hidden) == 0
	})
	// The channel still works.
	if _, err := f.Push(ctx, src, "after.bin", nil); err != nil {
		t.Fatalf("upload after refusals: %v", err)
	}
	refused := auditEvents(t, ctx, fs.b, fs.id, "file.refused")
	if len(refused) < 12 {
		t.Errorf("%d refusals in the audit trail, want at least 12", len(refused))
	}
	for _, e := range refused {
		if e.Detail["direction"] == "" || e.Detail["code"] == "" {
			t.Errorf("refusal without direction or code: %v", e.Detail)
		}
	}
}

// filesOnSmallDisk is a files session whose uploads go to a 4 MiB disk.
func filesOnSmallDisk(t *testing.T, ctx context.Context) (*filesSession, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (CI runs as root)")
	}
	inbox := smallDisk(t, 4)
	return startFilesSession(t, ctx, "-files-inbox", inbox), inbox
}

// TestFileDiskFull: an upload larger than the free space is refused up
// front; one that runs out of space midway is removed.
func TestFileDiskFull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs, inbox := filesOnSmallDisk(t, ctx)
	_, f := fs.files(t, ctx)
	local := t.TempDir()

	big, _ := randomFile(t, local, "big.bin", 6<<20)
	_, err := f.Push(ctx, big, "", nil)
	var fe *client.FileError
	if !errors.As(err, &fe) || fe.Code != protocol.FileErrNoSpace || !strings.Contains(fe.Message, "disk is full") {
		t.Fatalf("upload larger than the disk: %v", err)
	}
	// Fits when it starts; the disk fills up while it runs.
	mid, _ := randomFile(t, local, "mid.bin", 3<<20)
	filled := false
	_, err = f.Push(ctx, mid, "", func(d, _ int64) {
		if d > 0 && !filled {
			filled = true
			os.WriteFile(filepath.Join(inbox, "filler"), make([]byte, 2<<20), 0o644)
		}
	})
	if !errors.As(err, &fe) || fe.Code != protocol.FileErrNoSpace {
		t.Fatalf("upload that fills the disk: %v\nhost:\n%s", err, fs.host.stderr.String())
	}
	m, _ := filepath.Glob(filepath.Join(inbox, "*"))
	hidden, _ := filepath.Glob(filepath.Join(inbox, ".tether-*"))
	if len(hidden) != 0 || !slices.Equal(m, []string{filepath.Join(inbox, "filler")}) {
		t.Fatalf("the partial file was not removed: %v %v", m, hidden)
	}
	if n := len(auditEvents(t, ctx, fs.b, fs.id, "file.refused")); n != 2 {
		t.Errorf("%d refusals audited, want 2", n)
	}
}

// TestUploadsSideBySideKeepRoom: two technicians send the user a file
// each at the same time, and the user's disk holds either but not both:
// the second is refused up front, saying the disk is full, instead of one
// of them failing half way; the first arrives whole.
func TestUploadsSideBySideKeepRoom(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs, inbox := filesOnSmallDisk(t, ctx)
	_, first := fs.files(t, ctx)
	_, second := fs.files(t, ctx)
	local := t.TempDir()
	a, _ := randomFile(t, local, "a.bin", 3<<20)
	b, _ := randomFile(t, local, "b.bin", 3<<20)
	var secondErr error
	tried := false
	// The first upload waits in its progress callback while the second is
	// tried: it has started, and has most of its bytes still to come.
	_, err := first.Push(ctx, a, "", func(d, _ int64) {
		if d > 0 && !tried {
			tried = true
			_, secondErr = second.Push(ctx, b, "", nil)
		}
	})
	if err != nil {
		t.Fatalf("the first upload: %v\nhost:\n%s", err, fs.host.stderr.String())
	}
	var fe *client.FileError
	if !tried || !errors.As(secondErr, &fe) || fe.Code != protocol.FileErrNoSpace || !strings.Contains(fe.Message, "files already on their way need") {
		t.Fatalf("the second upload, tried while the first ran: %v", secondErr)
	}
	if m, _ := filepath.Glob(filepath.Join(inbox, "*")); !slices.Equal(m, []string{filepath.Join(inbox, "a.bin")}) {
		t.Fatalf("files in the user's folder: %v", m)
	}
}

// TestViewerPushPull: the viewer command line sends and fetches files with
// a progress bar and reports the verified hash.
func TestViewerPushPull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	local := t.TempDir()
	src, sum := randomFile(t, local, "fix.sh", 3<<20)
	run := func(args ...string) string {
		t.Helper()
		out, err := fs.b.viewer(t, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("viewer %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := run("push", "-session", fs.id, src)
	if !strings.Contains(out, "100%") || !strings.Contains(out, sum) || !strings.Contains(out, filepath.Join(fs.inbox, "fix.sh")) {
		t.Fatalf("push output:\n%s", out)
	}
	if h, _, _ := client.HashFile(filepath.Join(fs.inbox, "fix.sh")); h != sum {
		t.Fatal("pushed file differs")
	}
	_, rsum := randomFile(t, fs.home, "app.log", 2<<20)
	dst := filepath.Join(local, "app.log")
	out = run("pull", "-session", fs.id, "app.log", dst)
	if !strings.Contains(out, rsum) {
		t.Fatalf("pull output:\n%s", out)
	}
	if h, _, _ := client.HashFile(dst); h != rsum {
		t.Fatal("pulled file differs")
	}
	if out := run("ls", "-session", fs.id); !strings.Contains(out, "app.log") || !strings.Contains(out, "Downloads/") {
		t.Fatalf("ls output:\n%s", out)
	}
	// Into a folder, a fetched file keeps its name.
	into := t.TempDir()
	run("pull", "-session", fs.id, "app.log", into)
	if h, _, _ := client.HashFile(filepath.Join(into, "app.log")); h != rsum {
		t.Fatal("the file pulled into a folder differs")
	}
	// What is wrong on the technician's side is said before the user is
	// asked for anything. (Questions are counted: the terminal may still
	// be saying that the last command's technician left.)
	asked := fs.host.stdout.String()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"push", "-session", fs.id, filepath.Join(local, "missing.bin")}, "no such file"},
		{[]string{"push", "-session", fs.id, local}, "is not a file"},
		{[]string{"pull", "-session", fs.id, "app.log", filepath.Join(local, "no", "such", "x")}, "there is no folder"},
		{[]string{"pull", "-session", fs.id, "app.log", into}, "exists; choose another name"},
	} {
		if out, err := fs.b.viewer(t, c.args...).CombinedOutput(); err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("viewer %v: %v\n%s", c.args[0], err, out)
		}
	}
	if after := fs.host.stdout.String(); strings.Count(after, "Allow? ") != strings.Count(asked, "Allow? ") {
		t.Errorf("the user was asked about a command that could not run:\n%s", strings.TrimPrefix(fs.host.stdout.String(), asked))
	}
	// A refusal is one clear line and a failing exit code.
	bad, err := fs.b.viewer(t, "pull", "-session", fs.id, "../../etc/shadow", filepath.Join(local, "x")).CombinedOutput()
	if err == nil || !strings.Contains(string(bad), "leaves the shared folder") {
		t.Fatalf("pull of ../../etc/shadow: %v\n%s", err, bad)
	}
	// The host's words come to this terminal without control characters:
	// here they quote a path with escapes that would clear the screen.
	bad, err = fs.b.viewer(t, "pull", "-session", fs.id, "\x1b[2J\x1b[Hgone.log", filepath.Join(local, "x")).CombinedOutput()
	if err == nil || !strings.Contains(string(bad), "does not exist") || strings.Contains(string(bad), "\x1b") {
		t.Fatalf("pull of a path with escapes: %v\n%q", err, bad)
	}
	// Ctrl+C in the middle of a pull says how to carry on.
	randomFile(t, fs.home, "big.log", 100<<20)
	part := filepath.Join(local, "big.log.tether-part")
	cmd := fs.b.viewer(t, "pull", "-session", fs.id, "big.log", filepath.Join(local, "big.log"))
	var cut syncBuffer
	cmd.Stdout, cmd.Stderr = &cut, &cut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool { st, err := os.Stat(part); return err == nil && st.Size() > 0 })
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err == nil || !strings.Contains(cut.String(), "viewer: stopped; run the same command again to carry on where it stopped") {
		t.Fatalf("pull cut by Ctrl+C: %v\n%s", err, cut.String())
	}
	// The user pauses while it carries on: the technician reads why it
	// stopped, on a line of its own after the progress bar.
	had, _ := os.Stat(part)
	cmd = fs.b.viewer(t, "pull", "-session", fs.id, "big.log", filepath.Join(local, "big.log"))
	var paused syncBuffer
	cmd.Stdout, cmd.Stderr = &paused, &paused
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool { st, err := os.Stat(part); return err == nil && st.Size() > had.Size() })
	fs.host.typeLine(t, "pause")
	err = cmd.Wait()
	if err == nil || !strings.Contains(paused.String(), "\nviewer: pull big.log: the channel was closed: the user paused the session; once they resume, run the same command again to carry on where it stopped\n") {
		t.Fatalf("pull stopped by a pause: %v\n%q", err, paused.String())
	}
	fs.host.typeLine(t, "resume")
}

// TestSupervisorNoFilesOrShell: a supervisor watches; the broker opens no
// files or shell channel for them.
func TestSupervisorNoFilesOrShell(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	if err := fs.b.CreateUser(ctx, "sam", "supervisor-password", "supervisor"); err != nil {
		t.Fatal(err)
	}
	sup := fs.b.login(t, ctx, "sam", "supervisor-password")
	j, err := sup.Join(ctx, fs.id)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// Supervisors are asked for view only; whatever they were granted, the
	// broker refuses them a files or shell channel.
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, protocol.PermView) }); err != nil {
		t.Fatal(err)
	}
	f, err := j.Files(ctx)
	if err == nil {
		_, err = f.List(ctx, ".")
	}
	if err == nil || !strings.Contains(err.Error(), "view-only") {
		t.Fatalf("a supervisor's files channel: %v", err)
	}
	if sh, err := j.Shell(ctx, 1, 80, 24); err == nil {
		select {
		case <-sh.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a supervisor's shell stayed open")
		}
	}
	if strings.Contains(fs.host.stdout.String(), "A terminal is open on this computer") {
		t.Fatal("the host started a shell for a supervisor")
	}
}

// TestFileRevokeCancels: the user revokes file transfer mid-upload; the
// upload stops at once and nothing of it stays on the user's disk.
func TestFileRevokeCancels(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	_, f := fs.files(t, ctx)
	src, _ := randomFile(t, t.TempDir(), "large.bin", 60<<20)
	revoked := false
	_, err := f.Push(ctx, src, "", func(d, _ int64) {
		if d > 8<<20 && !revoked {
			revoked = true
			fs.host.typeLine(t, "revoke files")
		}
	})
	if err == nil {
		t.Fatal("the upload finished after the revoke")
	}
	waitFor(t, 10*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(fs.inbox, "*"))
		hidden, _ := filepath.Glob(filepath.Join(fs.inbox, ".tether-*"))
		return len(m)+len(hidden) == 0
	})
	// And a new transfer is refused.
	if _, err := f.List(ctx, "."); err == nil {
		t.Fatal("listing after the revoke")
	}
}

// TestPushStoppedSaysWhy: a file stopped on its way to the user says on
// the user's terminal which of the reasons it was: the technician
// cancelled it, left (their viewer stopped by Ctrl+C), the user paused the
// session, or the user took file transfer back. The audit trail says the
// same, and also when an admin cut the technician off.
func TestPushStoppedSaysWhy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	src, _ := randomFile(t, t.TempDir(), "setup.exe", 100<<20)
	j, f := fs.files(t, ctx)
	// pushStopped pushes src as name through f and calls stop once 4 MB
	// of it went.
	pushStopped := func(ctx context.Context, f *client.Files, name string, stop func()) {
		stopped := false
		f.Push(ctx, src, name, func(d, _ int64) {
			if d > 4<<20 && !stopped {
				stopped = true
				stop()
			}
		})
	}
	cut, stop := context.WithCancel(ctx)
	pushStopped(cut, f, "cancelled.exe", stop)
	fs.host.waitOutput(t, "Receiving cancelled.exe: stopped: the technician cancelled it\r\n", 1, 10*time.Second)
	fs.wantInterrupted(t, ctx, "cancelled.exe", "The transfer was cancelled.")

	cmd := fs.b.viewer(t, "push", "-session", fs.id, src, "left.exe")
	out := startCmd(t, cmd)
	waitText(t, out, `setup.exe (?:\[[#.]+\])? *\d+% [1-9]\d*/`, 30*time.Second)
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	fs.host.waitOutput(t, "Receiving left.exe: stopped: the technician left or lost the connection\r\n", 1, 10*time.Second)
	fs.wantInterrupted(t, ctx, "left.exe", "The technician left or lost the connection.")

	pushStopped(ctx, f, "paused.exe", func() { fs.host.typeLine(t, "pause") })
	fs.host.waitOutput(t, "Receiving paused.exe: stopped: you paused the session; once you resume, the technician can carry on from where it stopped\r\n", 1, 10*time.Second)
	fs.wantInterrupted(t, ctx, "paused.exe", "The user paused the session.")
	// The pause closed the files channel: the technician opens another
	// once the user resumes.
	fs.host.typeLine(t, "resume")
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return !p.Paused && has(p, protocol.PermFiles) }); err != nil {
		t.Fatal(err)
	}
	f, err := j.Files(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// An admin cuts the technician off: the trail says why, not that the
	// technician left.
	var key string
	fs.c, key = fs.b.keyClient(t, `{"name":"script","scopes":["sessions:read","sessions:join"]}`)
	_, cutF := fs.files(t, ctx)
	pushStopped(ctx, cutF, "cut.exe", func() { fs.b.revokeKey(t, key) })
	fs.wantInterrupted(t, ctx, "cut.exe", "The API key you connected with was revoked.")

	pushStopped(ctx, f, "revoked.exe", func() { fs.host.typeLine(t, "revoke files") })
	fs.host.waitOutput(t, "Receiving revoked.exe: stopped: you took back file transfer\r\n", 1, 10*time.Second)
	fs.wantInterrupted(t, ctx, "revoked.exe", "The user took back file transfer.")
}

// TestPushPausedResumes: the user pauses the session while a file is on
// its way to them; their computer keeps the part received, as after a
// dropped connection, and once they resume the technician's next push
// carries on from it and the file arrives whole. Taking file transfer
// back still removes the part a pause kept.
func TestPushPausedResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	const size = 40 << 20
	src, sum := randomFile(t, t.TempDir(), "patch.bin", size)
	j, f := fs.files(t, ctx)
	partials := func() []string {
		m, _ := filepath.Glob(filepath.Join(fs.inbox, ".tether-*"))
		return m
	}
	// pushPaused pushes src and pauses half way; it returns the size of
	// the part the user's computer kept.
	pushPaused := func(f *client.Files) int64 {
		t.Helper()
		paused := false
		if _, err := f.Push(ctx, src, "", func(d, _ int64) {
			if d > size/2 && !paused {
				paused = true
				fs.host.typeLine(t, "pause")
			}
		}); err == nil {
			t.Fatal("the push finished although the user paused the session")
		}
		fs.host.waitOutput(t, "Receiving patch.bin: stopped: you paused the session; once you resume, the technician can carry on from where it stopped\r\n", 1, 10*time.Second)
		m := partials()
		if len(m) != 1 {
			t.Fatalf("the part received before the pause was not kept: %v\nhost:\n%s", m, fs.host.stderr.String())
		}
		st, err := os.Stat(m[0])
		if err != nil || st.Size() == 0 {
			t.Fatalf("the part kept: %v", err)
		}
		return st.Size()
	}
	// resume resumes the session and opens a new files channel (the pause
	// closed the old one).
	resume := func() *client.Files {
		t.Helper()
		fs.host.typeLine(t, "resume")
		if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return !p.Paused && has(p, protocol.PermFiles) }); err != nil {
			t.Fatal(err)
		}
		f, err := j.Files(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	kept := pushPaused(f)
	f = resume()
	first, done, err := pushFrom(ctx, f, src)
	if err != nil {
		t.Fatalf("push after the resume: %v\nhost:\n%s", err, fs.host.stderr.String())
	}
	t.Logf("the push after the resume started at %d of %d bytes (%d kept)", first, size, kept)
	if first != kept {
		t.Fatalf("the push after the resume started at %d bytes, not where the pause stopped it (%d)", first, kept)
	}
	if h, _, _ := client.HashFile(filepath.Join(fs.inbox, "patch.bin")); h != sum || done.SHA256 != sum {
		t.Fatalf("the file sent in two parts is damaged: %s (host says %s), want %s", h, done.SHA256, sum)
	}
	if m := partials(); len(m) != 0 {
		t.Fatalf("partial files left: %v", m)
	}

	// The user moves the file away (sent again, it would be found there);
	// paused half way again; while paused, the user takes file transfer
	// back: the part is removed at once, not when they resume.
	os.Remove(filepath.Join(fs.inbox, "patch.bin"))
	pushPaused(f)
	fs.host.typeLine(t, "revoke files")
	waitFor(t, 10*time.Second, func() bool { return len(partials()) == 0 })
}

// TestPushStoppedByEndSaysSessionEnded: the user, or the technician (the
// console's End session, here through the API), ends the session while a
// file is on its way to the user; the user's terminal says the transfer
// stopped because the session ended, not that the technician left, and
// who ended it; so do the technician's push and the audit trail.
func TestPushStoppedByEndSaysSessionEnded(t *testing.T) {
	for _, tc := range []struct {
		name     string
		end      func(t *testing.T, ctx context.Context, fs *filesSession) error
		hostSays string // the user's terminal, after the transfer's line
		reason   string // the technician's and the audit trail's
	}{
		{"by the user", func(t *testing.T, _ context.Context, fs *filesSession) error { fs.host.typeLine(t, "end"); return nil },
			"You ended the session.", "The user ended the session."},
		{"by the technician", func(_ *testing.T, ctx context.Context, fs *filesSession) error { return fs.c.EndSession(ctx, fs.id) },
			"The technician ended the session.", "The technician ended the session."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			fs := startFilesSession(t, ctx)
			src, _ := randomFile(t, t.TempDir(), "setup.exe", 100<<20)
			_, f := fs.files(t, ctx)
			var ended chan error
			_, perr := f.Push(ctx, src, "setup.exe", func(d, _ int64) {
				if d > 4<<20 && ended == nil {
					ended = make(chan error, 1)
					go func() { ended <- tc.end(t, ctx, fs) }()
				}
			})
			if perr == nil || !strings.Contains(perr.Error(), tc.reason) {
				t.Errorf("the technician's push stopped with %v", perr)
			}
			if ended == nil {
				t.Fatal("the push finished before the session was ended")
			}
			if err := <-ended; err != nil {
				t.Fatal(err)
			}
			if code := fs.host.wait(t, 10*time.Second); code != 0 {
				t.Fatalf("host exit code %d", code)
			}
			out := fs.host.waitOutput(t, tc.hostSays, 1, 3*time.Second)
			if !strings.Contains(out, "Receiving setup.exe: stopped: the session ended\r\n") || strings.Count(out, "Receiving setup.exe: stopped") != 1 {
				t.Fatalf("the user is not told the transfer stopped because the session ended:\n%s", out)
			}
			fs.wantInterrupted(t, ctx, "setup.exe", tc.reason)
			// The trail, and the recording made of it, hold the stopped
			// transfer before the end.
			var types []string
			for _, e := range auditEvents(t, ctx, fs.b, fs.id, "") {
				types = append(types, e.Type)
			}
			if i, end := slices.Index(types, "file.interrupted"), slices.Index(types, "session.ended"); i < 0 || end < i {
				t.Errorf("the audit trail holds the transfer's stop after the session's end: %v", types)
			}
		})
	}
}

// TestViewerPushInterruptedResumes: Ctrl+C stops 'viewer push', which says
// to run the same command again to carry on; the next run sends only the
// rest, and the file arrives whole.
func TestViewerPushInterruptedResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	src, sum := randomFile(t, t.TempDir(), "image.iso", 64<<20)
	cmd := fs.b.viewer(t, "push", "-session", fs.id, src)
	out := startCmd(t, cmd)
	waitText(t, out, `image.iso (?:\[[#.]+\])? *\d+% [1-9]\d*/`, 30*time.Second)
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err == nil || !strings.Contains(out.String(), "run the same command again to carry on where it stopped") {
		t.Fatalf("push after Ctrl+C: %v\n%s", err, out.String())
	}
	again, err := fs.b.viewer(t, "push", "-session", fs.id, src).CombinedOutput()
	if err != nil || !strings.Contains(string(again), sum) {
		t.Fatalf("push again: %v\n%s", err, again)
	}
	// The first line of its progress says where it started.
	m := regexp.MustCompile(`image.iso (?:\[[#.]+\])? *\d+% (\d+)/`).FindStringSubmatch(string(again))
	if m == nil || m[1] == "0" {
		t.Errorf("the second push started from the beginning:\n%s", again)
	}
	if h, _, _ := client.HashFile(filepath.Join(fs.inbox, "image.iso")); h != sum {
		t.Error("the resumed file differs")
	}
}

// TestViewerPushDroppedResumes: a push whose connection to the broker
// drops says the connection was lost (not that the broker closed it), and
// that running the same command again carries on; the next run sends only
// the rest.
func TestViewerPushDroppedResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	src, sum := randomFile(t, t.TempDir(), "image.iso", 64<<20)
	path := newTCPPath(t, strings.TrimPrefix(fs.b.URL(), "https://"))
	cmd := fs.b.viewer(t)
	cmd.Args = append(cmd.Args, "-broker", "https://"+path.addr(), "push", "-session", fs.id, src)
	out := startCmd(t, cmd)
	waitText(t, out, `image.iso (?:\[[#.]+\])? *\d+% [1-9]\d*/`, 30*time.Second)
	path.drop()
	want := ": disconnected: The connection to the broker was lost. Run the same command again to carry on where it stopped.\n"
	if err := cmd.Wait(); err == nil || !strings.Contains(out.String(), want) {
		t.Fatalf("push whose connection dropped: %v\n%s", err, out.String())
	}
	again, err := fs.b.viewer(t, "push", "-session", fs.id, src).CombinedOutput()
	if err != nil || !strings.Contains(string(again), sum) {
		t.Fatalf("push again: %v\n%s", err, again)
	}
	m := regexp.MustCompile(`image.iso (?:\[[#.]+\])? *\d+% (\d+)/`).FindStringSubmatch(string(again))
	if m == nil || m[1] == "0" {
		t.Errorf("the push after the drop started from the beginning:\n%s", again)
	}
	if h, _, _ := client.HashFile(filepath.Join(fs.inbox, "image.iso")); h != sum {
		t.Error("the file sent in two parts differs")
	}
}

// TestViewerPushPausedResumes: the user pauses the session while 'viewer
// push' runs; it says so, and that running the same command again once
// they resume carries on where it stopped; the next run sends only the
// rest, and the file arrives whole.
func TestViewerPushPausedResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	src, sum := randomFile(t, t.TempDir(), "image.iso", 64<<20)
	cmd := fs.b.viewer(t, "push", "-session", fs.id, src)
	out := startCmd(t, cmd)
	waitText(t, out, `image.iso (?:\[[#.]+\])? *\d+% [1-9]\d*/`, 30*time.Second)
	fs.host.typeLine(t, "pause")
	want := "\nviewer: push " + src + ": the channel was closed: the user paused the session; once they resume, run the same command again to carry on where it stopped\n"
	if err := cmd.Wait(); err == nil || !strings.Contains(out.String(), want) {
		t.Fatalf("push stopped by a pause: %v\n%q", err, out.String())
	}
	fs.host.typeLine(t, "resume")
	again, err := fs.b.viewer(t, "push", "-session", fs.id, src).CombinedOutput()
	if err != nil || !strings.Contains(string(again), sum) {
		t.Fatalf("push again: %v\n%s", err, again)
	}
	m := regexp.MustCompile(`image.iso (?:\[[#.]+\])? *\d+% (\d+)/`).FindStringSubmatch(string(again))
	if m == nil || m[1] == "0" {
		t.Errorf("the push after the resume started from the beginning:\n%s\nthe user's terminal:\n%s", again, fs.host.stdout.String())
	}
	if h, _, _ := client.HashFile(filepath.Join(fs.inbox, "image.iso")); h != sum {
		t.Error("the file sent in two parts differs")
	}
}

// TestViewerVerbose: -v shows how the connection goes, for a technician
// finding out why a command does not work.
func TestViewerVerbose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	out, err := fs.b.viewer(t, "-v", "ls", "-session", fs.id).CombinedOutput()
	if err != nil {
		t.Fatalf("viewer -v ls: %v\n%s", err, out)
	}
	for _, want := range []string{`msg="media connection" session=` + fs.id + ` state=connected`, `msg="channel open" session=` + fs.id + ` channel=files`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("viewer -v does not log %s:\n%s", want, out)
		}
	}
}

// TestFileInterruptedAudited: a fetch the technician stops half way, and
// one cut off by their leaving, are in the audit trail with how much of
// the file left the user's computer, even though neither finished.
func TestFileInterruptedAudited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	randomFile(t, fs.home, "customers.db", 60<<20)
	_, f := fs.files(t, ctx)

	// Cancelled: the host confirms, the broker records the part that moved.
	cut, stop := context.WithCancel(ctx)
	local := filepath.Join(t.TempDir(), "customers.db")
	_, err := f.Pull(cut, "customers.db", local, func(d, _ int64) {
		if d > 4<<20 {
			stop()
		}
	})
	if err == nil {
		t.Fatal("the cancelled fetch finished")
	}
	// Cut off: the technician's program goes away mid-transfer.
	j2, f2 := fs.files(t, ctx)
	f2.Pull(ctx, "customers.db", filepath.Join(t.TempDir(), "customers.db"), func(d, _ int64) {
		if d > 4<<20 {
			j2.Close()
		}
	})

	var evs []auditEvent
	waitFor(t, 10*time.Second, func() bool {
		evs = auditEvents(t, ctx, fs.b, fs.id, "file.interrupted")
		return len(evs) >= 2
	})
	for i, ev := range evs {
		d := ev.Detail
		moved, _ := d["relayed_bytes"].(float64)
		if d["name"] != "customers.db" || d["direction"] != "download" || d["size"] != float64(60<<20) || moved < 4<<20 || moved >= 60<<20 || d["reason"] == "" {
			t.Errorf("interrupted fetch %d recorded as %v", i, d)
		}
	}
	if evs := auditEvents(t, ctx, fs.b, fs.id, "file.transfer"); len(evs) != 0 {
		t.Errorf("unfinished fetches recorded as transferred: %v", evs)
	}
}

// TestFileListingLongFolder: a folder with more entries than a listing
// carries shows the first ones by name, and says that the rest are not
// shown, in 'viewer ls'.
func TestFileListingLongFolder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	logs := filepath.Join(fs.home, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 1500; i++ {
		if err := os.WriteFile(filepath.Join(logs, fmt.Sprintf("log-%04d.txt", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fs.join(t, ctx, protocol.PermFiles)
	cmd := fs.b.viewer(t, "ls", "-session", fs.id, "logs")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("viewer ls: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != protocol.MaxListing || !strings.HasSuffix(lines[0], " log-0001.txt") || !strings.HasSuffix(lines[len(lines)-1], " log-1000.txt") {
		t.Errorf("viewer ls of 1500 files shows %d, from %q to %q", len(lines), lines[0], lines[len(lines)-1])
	}
	if !strings.Contains(stderr.String(), "This folder holds 1500 entries; only the first 1000 are shown (folders first, then by name).") {
		t.Errorf("viewer ls does not say the folder was cut short:\n%s", stderr.String())
	}
}

// TestViewerPullDiskFull: a fetch that does not fit on the technician's
// disk is refused before it starts, saying so, and leaves nothing behind;
// one that fills the disk while it runs says the disk is full and resumes
// once there is room again.
func TestViewerPullDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (CI runs as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	_, sum := randomFile(t, fs.home, "dump.bin", 3<<20)
	randomFile(t, fs.home, "huge.bin", 6<<20)
	disk := smallDisk(t, 4)
	_, f := fs.files(t, ctx)

	_, err := f.Pull(ctx, "huge.bin", filepath.Join(disk, "huge.bin"), nil)
	var fe *client.FileError
	if !errors.As(err, &fe) || fe.Code != protocol.FileErrNoSpace || !strings.HasPrefix(fe.Message, "Your disk is full: huge.bin needs 6291456 bytes more in "+disk) {
		t.Fatalf("fetch larger than the disk: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(disk, "*")); len(m) != 0 {
		t.Fatalf("a refused fetch left %v", m)
	}

	// Fits when it starts; the disk fills up while it runs.
	filler := filepath.Join(disk, "filler")
	filled := false
	_, err = f.Pull(ctx, "dump.bin", filepath.Join(disk, "dump.bin"), func(d, _ int64) {
		if d > 0 && !filled {
			filled = true
			os.WriteFile(filler, make([]byte, 2<<20), 0o644)
		}
	})
	if !errors.As(err, &fe) || fe.Code != protocol.FileErrNoSpace || !strings.Contains(fe.Message, "Your disk is full: dump.bin stopped at") {
		t.Fatalf("fetch that fills the disk: %v", err)
	}
	os.Remove(filler)
	done, err := f.Pull(ctx, "dump.bin", filepath.Join(disk, "dump.bin"), nil)
	if err != nil || done.SHA256 != sum {
		t.Fatalf("fetch again once there is room: %v", err)
	}
}

// TestFileLinkedFolderOpens: a link to a folder inside the shared folder
// lists as a folder and opens; a link leading outside stays a link.
func TestFileLinkedFolderOpens(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	if err := os.MkdirAll(filepath.Join(fs.home, "work", "reports"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(fs.home, "work", "reports", "q3.txt"), []byte("q3"), 0o644)
	os.Symlink("work/reports", filepath.Join(fs.home, "Reports"))
	os.Symlink("/etc", filepath.Join(fs.home, "system"))
	_, f := fs.files(t, ctx)
	entries, err := f.List(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]protocol.FileEntry{}
	for _, e := range entries {
		got[e.Name] = e
	}
	if e := got["Reports"]; !e.Dir || e.Kind != "link" {
		t.Errorf("a link to a folder inside the shared folder lists as %+v", e)
	}
	if e := got["system"]; e.Dir || e.Kind != "link" {
		t.Errorf("a link leading outside lists as %+v", e)
	}
	inside, err := f.List(ctx, "Reports")
	if err != nil || len(inside) != 1 || inside[0].Name != "q3.txt" {
		t.Errorf("opening the linked folder: %v %+v", err, inside)
	}
}

// TestViewerPullWithoutHardLinks: a fetch into a folder on a file system
// without hard links (a FAT USB stick) is saved once whole, as elsewhere,
// and never over a file there.
func TestViewerPullWithoutHardLinks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stick := xtest.LinklessDisk(t)
	fs := startFilesSession(t, ctx)
	_, sum := randomFile(t, fs.home, "app.log", 300<<10)
	_, f := fs.files(t, ctx)
	local := filepath.Join(stick, "app.log")
	if done, err := f.Pull(ctx, "app.log", local, nil); err != nil || done.SHA256 != sum {
		t.Fatalf("fetch onto the stick: %v", err)
	}
	if got, _, err := client.HashFile(local); err != nil || got != sum {
		t.Fatalf("the fetched file: SHA-256 %s, %v; want %s", got, err, sum)
	}
	if m, _ := filepath.Glob(filepath.Join(stick, "*")); len(m) != 1 {
		t.Errorf("on the stick: %v, want app.log alone", m)
	}
}

// TestViewerPushHashStops: a push of a large file says it is computing the
// file's SHA-256, which takes a while, and Ctrl+C stops it at once, not
// once the whole file has been read.
func TestViewerPushHashStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx, "-max-file-size", "32GiB")
	big := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 16<<30); err != nil { // sparse: read as fast as memory goes
		t.Fatal(err)
	}
	cmd := fs.b.viewer(t, "push", "-session", fs.id, big)
	out := startCmd(t, cmd)
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(out.String(), "Computing the SHA-256 of "+big) })
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	stopped := time.Now()
	err := cmd.Wait()
	if err == nil || !strings.Contains(out.String(), "viewer: stopped") || time.Since(stopped) > 2*time.Second {
		t.Fatalf("push stopped by Ctrl+C while hashing, after %s: %v\n%s", time.Since(stopped), err, out.String())
	}
}

// TestPushProgressIsWhatArrived: a push's progress (what `viewer push`
// draws) is what the user's computer has written, not what left this
// side: with the user's computer frozen, megabytes wait in the buffers
// on the way, and the bar must not say they arrived. Once it runs again,
// the transfer ends at 100%.
func TestPushProgressIsWhatArrived(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fs := startFilesSession(t, ctx)
	_, f := fs.files(t, ctx)
	const size = 3 << 20
	src, sum := randomFile(t, t.TempDir(), "tool.bin", size)
	var reported atomic.Int64
	var steps atomic.Int32
	stopped := false
	type result struct {
		done protocol.FileMessage
		err  error
	}
	finished := make(chan result, 1)
	go func() {
		done, err := f.Push(ctx, src, "", func(d, total int64) {
			if !stopped { // the user's computer is ready; it freezes
				fs.host.cmd.Process.Signal(syscall.SIGSTOP)
				stopped = true
			}
			if d != reported.Swap(d) {
				steps.Add(1)
			}
		})
		finished <- result{done, err}
	}()
	t.Cleanup(func() { fs.host.cmd.Process.Signal(syscall.SIGCONT) })
	time.Sleep(3 * time.Second)
	var written int64
	filepath.Walk(fs.inbox, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			written += info.Size()
		}
		return nil
	})
	if got := reported.Load(); got > written {
		t.Errorf("with the user's computer frozen, progress says %d of %d bytes arrived; it has %d", got, size, written)
	}
	fs.host.cmd.Process.Signal(syscall.SIGCONT)
	r := <-finished
	if r.err != nil || r.done.SHA256 != sum {
		t.Fatalf("push after the user's computer ran again: %+v, %v", r.done, r.err)
	}
	if got, n := reported.Load(), steps.Load(); got != size || n < 5 {
		t.Errorf("progress ended at %d of %d bytes, in %d steps", got, size, n)
	}
}
