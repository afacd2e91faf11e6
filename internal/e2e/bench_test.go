package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// rssMB reads a process's resident set size from /proc.
func rssMB(tb testing.TB, pid int) float64 { return statusMB(tb, pid, "VmRSS") }

// peakRSSMB reads the most a process's resident set size has been.
func peakRSSMB(tb testing.TB, pid int) float64 { return statusMB(tb, pid, "VmHWM") }

// statusMB reads a size field of a process's /proc status, in MiB.
func statusMB(tb testing.TB, pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				tb.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	tb.Fatal("no " + field)
	return 0
}

// brokerProc runs bin/broker as its own process so its memory can be read,
// with args added to its flags.
func brokerProc(tb testing.TB, args ...string) (cmd *exec.Cmd, url, caFile, apiKey string) {
	dir := tb.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd = exec.Command(xtest.Build(tb, "./broker"), "-addr", fmt.Sprintf("127.0.0.1:%d", port), "-udp", strconv.Itoa(port), "-data", dir)
	cmd.Args = append(cmd.Args, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "Console: "); ok {
			url = strings.TrimSuffix(u, "/")
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	var admin server.InitialAdmin
	data, err := os.ReadFile(filepath.Join(dir, server.InitialAdminFile))
	if err != nil {
		tb.Fatal(err)
	}
	json.Unmarshal(data, &admin)
	return cmd, url, filepath.Join(dir, "certs", "ca.pem"), admin.APIKey
}

// benchHost runs bin/host on a terminal, as a user who started it from a
// shell, and allows everything it asks for there. Cleanup stops it.
func benchHost(b *testing.B, display string, args ...string) *exec.Cmd {
	ptmx, tty, err := pty.Open()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(xtest.Build(b, "./host"), args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+display, "HOME="+b.TempDir()) // no dotfiles of the machine's user: see startHostProc
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	tty.Close()
	read := make(chan struct{})
	go func() { // ends when the pty closes, after the host has exited
		defer close(read)
		var seen strings.Builder
		answered := 0
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			seen.Write(buf[:n])
			for prompts := strings.Count(seen.String(), "Allow? "); answered < prompts; answered++ {
				ptmx.WriteString("all\n")
			}
			if err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		ptmx.Close()
		<-read
	})
	return cmd
}

// BenchmarkStream1080p streams a 1920x1080 screen that changes every frame
// from a real host through a real broker to the Go viewer for 30 s, and
// reports the frames delivered per second and the memory of both programs.
func BenchmarkStream1080p(b *testing.B) {
	const seconds = 30
	display := xtest.StartXvfb(b, 1920, 1080)
	xtest.StartPattern(b, display, "-mode", "counter", "-interval", "16")
	brokerCmd, url, caFile, key := brokerProc(b)
	time.Sleep(2 * time.Second) // let the idle broker settle before reading its memory
	idleRSS := rssMB(b, brokerCmd.Process.Pid)

	u, _ := dial.BrokerURL(url)
	c, err := client.New(client.Config{Broker: u, CAFile: caFile, Token: key})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	sess, err := c.CreateSession(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	host := benchHost(b, display, "-broker", url, "-ca", caFile, "-fps", "60", sess.Code)
	j, err := c.Join(ctx, sess.ID)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Screenshot(ctx); err != nil { // wait for video
		b.Fatal(err)
	}
	b.ResetTimer()
	start, startFrames := time.Now(), j.Frames()
	var hostPeak, brokerPeak float64
	for time.Since(start) < seconds*time.Second {
		time.Sleep(time.Second)
		hostPeak = max(hostPeak, rssMB(b, host.Process.Pid))
		brokerPeak = max(brokerPeak, rssMB(b, brokerCmd.Process.Pid))
	}
	fps := float64(j.Frames()-startFrames) / time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(fps, "fps")
	b.ReportMetric(hostPeak, "host-MB")
	b.ReportMetric(brokerPeak, "broker-session-MB")
	b.ReportMetric(idleRSS, "broker-idle-MB")
	b.ReportMetric(0, "ns/op")
}
