package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// sshd is a private OpenSSH server on a spare loopback port with a
// throw-away host key and an authorized key, for comparisons.
type sshd struct {
	port int
	key  string // the client's private key
}

func startSSHD(b *testing.B) *sshd {
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		b.Skip("openssh-server is not installed (make bench installs it)")
	}
	dir := b.TempDir()
	for _, k := range []string{"host_key", "user_key"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			b.Fatalf("ssh-keygen: %v %s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "user_key.pub"))
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
`, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o600)
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	var errs syncBuffer
	cmd.Stderr = &errs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("sshd did not start: %s", errs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &sshd{port: port, key: filepath.Join(dir, "user_key")}
}

func (s *sshd) opts() []string {
	return []string{"-i", s.key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}
}

// filesBenchSession runs bin/broker and bin/host as separate processes and
// joins as the technician with files and shell granted.
func filesBenchSession(b *testing.B, ctx context.Context, home string) *client.Joined {
	rtc.TuneGC() // this process is the viewer: tuned as bin/viewer is
	display := xtest.StartXvfb(b, 320, 240)
	j, _ := benchSession(b, ctx, display, "BENCH-FILES", []string{protocol.PermView, protocol.PermFiles, protocol.PermShell},
		"-files-root", home, "-files-inbox", filepath.Join(home, "inbox"))
	if _, err := j.WaitPermissions(ctx, func(p protocol.Permissions) bool { return has(p, protocol.PermFiles, protocol.PermShell) }); err != nil {
		b.Fatal(err)
	}
	return j
}

// benchSession starts bin/broker and a session on it for ticket, which
// bin/host joins on display with hostArgs (the user allows what is asked
// for), and joins it as the Go viewer client. It returns the viewer's
// side and the host's process.
func benchSession(b *testing.B, ctx context.Context, display, ticket string, perms []string, hostArgs ...string) (*client.Joined, *exec.Cmd) {
	_, url, ca, key := brokerProc(b)
	u, err := dial.BrokerURL(url)
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.New(client.Config{Broker: u, CAFile: ca, Token: key})
	if err != nil {
		b.Fatal(err)
	}
	sess, err := c.CreateSession(ctx, ticket, perms...)
	if err != nil {
		b.Fatal(err)
	}
	host := benchHost(b, display, append(append([]string{"-broker", url, "-ca", ca}, hostArgs...), sess.Code)...)
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close() })
	return j, host
}

// BenchmarkFileTransfer sends 200 MB up and fetches 200 MB back through the
// broker, copies the same file with scp to localhost, and sends as much
// over one bare data-channel hop and through a bare relay, in one run.
func BenchmarkFileTransfer(b *testing.B) {
	const size = 200 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ssh := startSSHD(b)
	home := b.TempDir()
	local := b.TempDir()
	src, sum := randomFile(b, local, "payload.bin", size)
	j := filesBenchSession(b, ctx, home)
	f, err := j.Files(ctx)
	if err != nil {
		b.Fatal(err)
	}
	oneHop, twoHops := hopTo(b, false), hopTo(b, true)
	b.ResetTimer()
	var up, down, scp, hop, relay time.Duration
	for i := 0; i < b.N; i++ {
		os.RemoveAll(filepath.Join(home, "inbox"))
		start := time.Now()
		done, err := f.Push(ctx, src, "", nil)
		if err != nil || done.SHA256 != sum {
			b.Fatalf("push: %v", err)
		}
		up += time.Since(start)

		dst := filepath.Join(local, "back-"+strconv.Itoa(i))
		start = time.Now()
		if _, err := f.Pull(ctx, "inbox/payload.bin", dst, nil); err != nil {
			b.Fatalf("pull: %v", err)
		}
		down += time.Since(start)
		os.Remove(dst)

		target := filepath.Join(home, "scp-"+strconv.Itoa(i))
		args := append(append([]string{"-q", "-P", strconv.Itoa(ssh.port)}, ssh.opts()...), src, "127.0.0.1:"+target)
		start = time.Now()
		if out, err := exec.Command("scp", args...).CombinedOutput(); err != nil {
			b.Fatalf("scp: %v %s", err, out)
		}
		scp += time.Since(start)
		os.Remove(target)

		hop += hopTransfer(b, ctx, oneHop, size)
		relay += hopTransfer(b, ctx, twoHops, size)
	}
	b.StopTimer()
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(up), "upload-MB/s")
	b.ReportMetric(mbps(down), "download-MB/s")
	b.ReportMetric(mbps(scp), "scp-MB/s")
	b.ReportMetric(mbps(hop), "hop-MB/s")
	b.ReportMetric(mbps(relay), "relay-MB/s")
	b.ReportMetric(0, "ns/op")
}

// chunk is what one read of a terminal returned, and when.
type chunk struct {
	data []byte
	at   time.Time
}

// readTimed reads r until it fails and passes on each read with the time it
// returned, so that an echo is timed when its bytes arrive, not when a
// poll notices them.
func readTimed(r io.Reader) <-chan chunk {
	ch := make(chan chunk, 64)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 4096)
			n, err := r.Read(buf)
			if n > 0 {
				ch <- chunk{buf[:n], time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// settle drops whatever the terminal prints for d.
func settle(out <-chan chunk, d time.Duration) {
	t := time.After(d)
	for {
		select {
		case <-out:
		case <-t:
			return
		}
	}
}

// terminal is a shell to type into: how to write to it and what it prints.
type terminal struct {
	write func([]byte) error
	out   <-chan chunk
}

// echoTimes types n characters one at a time into each terminal in turn,
// and times each until its echo comes back, clearing the lines every 40
// characters. Taking turns key by key, the terminals meet the machine in
// the same state: a load that comes and goes on a shared machine weighs on
// both alike, so their ratio holds from run to run.
func echoTimes(b *testing.B, terms []terminal, n int) [][]time.Duration {
	times := make([][]time.Duration, len(terms))
	for i := 0; i < n; i++ {
		ch := byte('a' + i%26)
		for k, t := range terms {
			if i%40 == 0 {
				t.write([]byte{0x15}) // Ctrl+U: an empty line again
				settle(t.out, 50*time.Millisecond)
			}
			times[k] = append(times[k], echoTime(b, t, ch))
			// A fast typist on each terminal, not a flood: about
			// 20-35 ms from one key to the next on the same terminal.
			settle(t.out, time.Duration(10+i%7)*time.Millisecond)
		}
	}
	return times
}

// echoTime types ch and returns how long its echo took.
func echoTime(b *testing.B, t terminal, ch byte) time.Duration {
	start := time.Now()
	if err := t.write([]byte{ch}); err != nil {
		b.Fatal(err)
	}
	var seen []byte
	timeout := time.After(5 * time.Second)
	for {
		select {
		case c, ok := <-t.out:
			if !ok {
				b.Fatalf("the terminal closed; it showed %q", seen)
			}
			seen = append(seen, c.data...)
			if bytes.IndexByte(c.data, ch) >= 0 {
				return c.at.Sub(start)
			}
		case <-timeout:
			b.Fatalf("no echo of %q; terminal shows %q", ch, seen)
		}
	}
}

func percentile(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[int(float64(len(s)-1)*p)]) / 1e6
}

// BenchmarkShellEcho times keystroke → echo in a Tether shell through the
// broker, in `ssh -tt` to a private sshd on localhost, and over one bare
// data-channel hop and through a bare relay to a peer that sends each key
// back, and in bash on a local terminal, in one run.
func BenchmarkShellEcho(b *testing.B) {
	const keys = 200
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ssh := startSSHD(b)
	j := filesBenchSession(b, ctx, b.TempDir())

	sh, err := j.Shell(ctx, 1, 120, 40)
	if err != nil {
		b.Fatal(err)
	}
	out := readTimed(sh)
	sh.Write([]byte("PS1='$ '\r"))
	settle(out, 500*time.Millisecond)
	viaTether := terminal{write: func(p []byte) error { _, err := sh.Write(p); return err }, out: out}

	args := append(append([]string{"-tt", "-p", strconv.Itoa(ssh.port)}, ssh.opts()...), "127.0.0.1")
	cmd := exec.Command("ssh", args...)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 120, Rows: 40})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		ptmx.Close()
	}()
	sshOut := readTimed(ptmx)
	ptmx.WriteString("PS1='$ '\r")
	settle(sshOut, time.Second)
	viaSSH := terminal{write: func(p []byte) error { _, err := ptmx.Write(p); return err }, out: sshOut}
	viaHop, viaRelay := hopEcho(hopTo(b, false)), hopEcho(hopTo(b, true))
	local := localShell(b)

	b.ResetTimer()
	var tether, openssh, hop, relay, bash []time.Duration
	for i := 0; i < b.N; i++ {
		times := echoTimes(b, []terminal{viaTether, viaSSH, viaHop, viaRelay, local}, keys)
		tether, openssh = append(tether, times[0]...), append(openssh, times[1]...)
		hop, relay, bash = append(hop, times[2]...), append(relay, times[3]...), append(bash, times[4]...)
	}
	b.StopTimer()
	b.ReportMetric(percentile(tether, 0.5), "p50-ms")
	b.ReportMetric(percentile(tether, 0.95), "p95-ms")
	b.ReportMetric(percentile(openssh, 0.5), "ssh-p50-ms")
	b.ReportMetric(percentile(openssh, 0.95), "ssh-p95-ms")
	b.ReportMetric(percentile(hop, 0.5), "hop-p50-ms")
	b.ReportMetric(percentile(hop, 0.95), "hop-p95-ms")
	b.ReportMetric(percentile(relay, 0.5), "relay-p50-ms")
	b.ReportMetric(percentile(relay, 0.95), "relay-p95-ms")
	b.ReportMetric(percentile(bash, 0.5), "bash-p50-ms")
	b.ReportMetric(percentile(bash, 0.95), "bash-p95-ms")
	b.ReportMetric(percentile(relay, 0.5)+percentile(bash, 0.5), "floor-p50-ms")
	b.ReportMetric(float64(len(tether)), "keys")
	b.ReportMetric(0, "ns/op")
}
