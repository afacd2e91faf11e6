package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/record"
	"github.com/tether-support/tether/internal/xtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	xtest.Cleanup()
	os.Exit(code)
}

// lockedBuffer is written by the broker's output copier and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// broker is bin/broker running as its own process.
type broker struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer
	done           chan struct{}
}

// startBroker runs bin/broker with args and returns once it has started
// (printed its console address) or exited.
func startBroker(t *testing.T, args ...string) *broker {
	t.Helper()
	return startBrokerBin(t, xtest.Build(t, "./broker"), args...)
}

// startBrokerBin is startBroker with the broker program bin.
func startBrokerBin(t *testing.T, bin string, args ...string) *broker {
	t.Helper()
	b := &broker{cmd: exec.Command(bin, args...), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	b.cmd.Stdout, b.cmd.Stderr = b.stdout, b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() { b.cmd.Process.Kill(); <-b.done })
	deadline := time.After(30 * time.Second)
	for !b.started() {
		select {
		case <-b.done:
			return b
		case <-deadline:
			t.Fatalf("the broker neither started nor stopped:\n%s", b.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return b
}

func (b *broker) started() bool { return strings.Contains(b.stdout.String(), "Console:") }

// exitCode is the broker's exit status, or -1 while it runs.
func (b *broker) exitCode() int {
	select {
	case <-b.done:
		return b.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// loopback is the flags of a broker on loopback with its data in dir.
func loopback(t *testing.T, dir string) []string {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	return []string{"-addr", "127.0.0.1:0", "-udp", strconv.Itoa(port), "-data", dir}
}

// A value no deployment means (a code expired when it is made, a login
// that ends at once, -udp 0 read as 8443) stops the broker before it
// starts, with the flag and its range named.
func TestBrokerRefusesNonsenseFlags(t *testing.T) {
	tests := []struct {
		flag, value, want string
	}{
		{"code-ttl", "-5m", "-code-ttl -5m0s is out of range: a support code must stay valid long enough to be read out and typed in: give 1m to 24h"},
		{"code-ttl", "0", "-code-ttl 0s is out of range"},
		{"code-ttl", "30s", "-code-ttl 30s is out of range"},
		{"code-ttl", "48h", "-code-ttl 48h0m0s is out of range"},
		{"consent-timeout", "0", "-consent-timeout 0s is out of range: the user needs time to read a request before answering: give 10s to 1h"},
		{"viewer-grace", "-1s", "-viewer-grace -1s is out of range: a technician needs time to reload the console or run the next viewer command: give 10s to 24h"},
		{"login-idle", "0", "-login-idle 0s is out of range: a console login must survive a minute without clicks: give 1m to 720h"},
		{"login-ttl", "1ns", "-login-ttl 1ns is out of range: a console login must last long enough to work in: give 5m to 720h"},
		{"udp", "0", "-udp 0 is out of range: give a UDP port from 1 to 65535"},
		{"udp", "-1", "-udp -1 is out of range: give a UDP port from 1 to 65535"},
		{"udp", "99999", "-udp 99999 is out of range: give a UDP port from 1 to 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.flag+"="+tt.value, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			b := startBroker(t, append(loopback(t, data), "-"+tt.flag, tt.value)...)
			if b.started() {
				t.Fatalf("the broker started with -%s %s:\n%s", tt.flag, tt.value, b.stderr)
			}
			if code := b.exitCode(); code != 2 {
				t.Errorf("exit code %d, want 2 (bad usage)", code)
			}
			if got := b.stderr.String(); !strings.Contains(got, "broker: "+tt.want) {
				t.Errorf("stderr %q, want it to say %q", got, tt.want)
			}
			if _, err := os.Stat(data); err == nil {
				t.Error("the refused broker created its data directory")
			}
		})
	}
	// The ends of each range are accepted.
	b := startBroker(t, append(loopback(t, filepath.Join(t.TempDir(), "data")), "-code-ttl", "1m", "-consent-timeout", "10s",
		"-viewer-grace", "24h", "-login-ttl", "5m", "-login-idle", "720h", "-no-record")...)
	if !b.started() {
		t.Fatalf("a broker with the ends of each range did not start:\n%s", b.stderr)
	}
}

// Flags that would do nothing, or something else than meant, stop the
// broker with what is wrong: recording settings with -no-record, a host
// program that is not there, a public address with no host or a port out
// of range, the recordings in the data directory itself, a retention past
// a century (it once deleted every archive at start).
func TestBrokerRefusesMistakenFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-no-record", "-retention-days", "5"}, "-retention-days is given with -no-record, which records nothing"},
		{[]string{"-no-record", "-record-shell-input"}, "-record-shell-input is given with -no-record"},
		{[]string{"-host-binary", "/opt/tether/hots"}, "-host-binary /opt/tether/hots: there is no host program there"},
		{[]string{"-public-url", "https://:8443"}, `-public-url "https://:8443": give the https:// address`},
		{[]string{"-public-url", "https://support.example.com:99999"}, `-public-url "https://support.example.com:99999": give the https:// address`},
		{[]string{"-retention-days", "200000"}, "-retention-days 200000: give a number of days up to 36500"},
		{[]string{"-recordings", "DATA"}, "is the data directory: give the recordings a directory of their own"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			data := t.TempDir()
			args := slices.Clone(tt.args)
			for i := range args {
				args[i] = strings.ReplaceAll(args[i], "DATA", data)
			}
			b := startBroker(t, append(loopback(t, data), args...)...)
			if b.started() {
				t.Fatalf("the broker started with %v:\n%s", tt.args, b.stderr)
			}
			if got := b.stderr.String(); !strings.Contains(got, tt.want) {
				t.Errorf("stderr %q, want it to say %q", got, tt.want)
			}
		})
	}
}

// A recordings directory the broker cannot write in stops it at start:
// sessions that cannot be recorded are refused, and finding out only when
// a user's host joins is after the technician read out the code.
func TestBrokerRefusesReadOnlyRecordings(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a read-only tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	b := startBroker(t, append(loopback(t, t.TempDir()), "-recordings", mnt)...)
	if b.started() {
		t.Fatalf("the broker started with read-only recordings:\n%s", b.stdout)
	}
	want := "broker: session recordings cannot be written in " + mnt + ", and no session can start while it cannot be recorded: make the directory writable for the user the broker runs as, or give another -recordings"
	if got := b.stderr.String(); !strings.Contains(got, want) {
		t.Errorf("stderr %q, want it to say %q", got, want)
	}
}

// broker -h names the commands next to the flags: an operator reading it
// learns that archives can be verified and decrypted, and that a locked-out
// admin's account can be reset.
func TestBrokerUsageNamesCommands(t *testing.T) {
	out, err := exec.Command(xtest.Build(t, "./broker"), "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("broker -h: %v\n%s", err, out)
	}
	for _, want := range []string{"usage: broker [flags]", "broker verify [-key FILE] [-data DIR] [-encryption-key FILE] ARCHIVE",
		"broker decrypt -encryption-key FILE ARCHIVE OUTPUT", "broker reset-account [-data DIR] USERNAME", "broker version", "-code-ttl"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("broker -h does not say %q:\n%s", want, out)
		}
	}
}

// broker -version and the start line of the log name the build (the
// commit it was built from), and the log says when the broker stopped.
func TestBrokerVersionAndStopLine(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	revision := strings.TrimSpace(string(head))
	// Built as a release is, with the commit stamped in (this machine's go
	// env may turn that off by default).
	bin := filepath.Join(t.TempDir(), "broker")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"-version"}, {"version"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "broker ") || !strings.Contains(string(out), "commit "+revision) {
			t.Errorf("broker %s: %v %q, want the commit %s", args[0], err, out, revision)
		}
	}

	b := startBrokerBin(t, bin, append(loopback(t, t.TempDir()), "-no-record")...)
	if !b.started() {
		t.Fatalf("the broker did not start:\n%s", b.stderr)
	}
	if want := `msg="broker starting" version="`; !strings.Contains(b.stderr.String(), want) || !strings.Contains(b.stderr.String(), revision) {
		t.Errorf("the log does not start with the version and commit %s:\n%s", revision, b.stderr)
	}
	// SIGHUP reads the certificate again, as daemons do; it no longer
	// kills the broker without ending its sessions.
	b.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.stderr.String(), "TLS certificate read again (SIGHUP)") {
		select {
		case <-b.done:
			t.Fatalf("the broker stopped on SIGHUP:\n%s", b.stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP: no certificate read again:\n%s", b.stderr)
		}
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the broker did not stop on SIGTERM")
	}
	if code := b.exitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if want := `msg="broker stopped" reason="terminated signal received"`; !strings.Contains(b.stderr.String(), want) {
		t.Errorf("the log does not say %s:\n%s", want, b.stderr)
	}
}

// The flags of broker verify and broker decrypt may follow the archive,
// and a command given the wrong number of archives says so.
func TestArchiveCommandsTakeFlagsAfterArchive(t *testing.T) {
	dir := t.TempDir()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	enc := bytes.Repeat([]byte{7}, record.EncryptionKeySize)
	rec, err := record.New(record.Config{Dir: filepath.Join(dir, "recordings"), Key: key, EncryptionKey: enc})
	if err != nil {
		t.Fatal(err)
	}
	s, err := rec.Start(record.Info{Session: "s_flagsafter"})
	if err != nil {
		t.Fatal(err)
	}
	s.Event("session.created", "admin", []byte(`{}`))
	if err := s.Finish("ended"); err != nil {
		t.Fatal(err)
	}
	archive := s.Dir()
	keyFile, encFile := filepath.Join(dir, "key.pem"), filepath.Join(dir, "enc.key")
	if err := os.WriteFile(keyFile, record.PublicKeyPEM(key.Public().(ed25519.PublicKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(encFile, []byte(hex.EncodeToString(enc)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := xtest.Build(t, "./broker")
	tests := []struct {
		args []string
		code int
		want string // in the output; for a refusal, its last line
	}{
		{[]string{"verify", archive, "-key", keyFile, "-encryption-key", encFile}, 0, "verified: signature, hashes and event chain are intact"},
		{[]string{"decrypt", archive, filepath.Join(dir, "copy"), "-encryption-key", encFile}, 0, "decrypted " + archive + " to " + filepath.Join(dir, "copy")},
		{[]string{"verify", "-key", keyFile}, 2, "broker verify: give one archive to check (its directory or the downloaded zip), not 0"},
		{[]string{"verify", archive, archive, "-key", keyFile}, 2, "broker verify: give one archive to check (its directory or the downloaded zip), not 2"},
		{[]string{"decrypt", archive, "-encryption-key", encFile}, 2, "broker decrypt: give the archive and where to write its readable copy (ARCHIVE OUTPUT), not 1 arguments"},
	}
	for _, tt := range tests {
		out, err := exec.Command(bin, tt.args...).CombinedOutput()
		code := 0
		if err != nil {
			code = err.(*exec.ExitError).ExitCode()
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if code != tt.code || !strings.Contains(string(out), tt.want) || (code != 0 && lines[len(lines)-1] != tt.want) {
			t.Errorf("broker %s: exit %d, want %d and %q:\n%s", strings.Join(tt.args, " "), code, tt.code, tt.want, out)
		}
	}
}
