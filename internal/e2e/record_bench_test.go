package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/record"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/xtest"
	"github.com/tether-support/tether/viewer/client"
)

// cpuSeconds is the CPU time all of a process's threads have used, from
// /proc/PID/task/*/schedstat (nanoseconds, unlike the 10 ms ticks of
// /proc/PID/stat). Threads that exited are in the process's own stat only,
// so the larger of the two is taken.
func cpuSeconds(tb testing.TB, pid int) float64 {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		tb.Fatal(err)
	}
	var ns float64
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue // the thread just exited
		}
		if f := strings.Fields(string(data)); len(f) > 0 {
			v, _ := strconv.ParseFloat(f[0], 64)
			ns += v
		}
	}
	f := procStat(tb, pid)
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return max(ns/1e9, (utime+stime)/100) // USER_HZ is 100 on Linux
}

// procStat returns the fields of /proc/PID/stat after the program's name:
// f[11] and f[12] are the process's user and system time, f[13] and f[14]
// its waited-for children's, in ticks of 1/100 s.
func procStat(tb testing.TB, pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
}

// BenchmarkRecordingCPU streams the same workload (a 1920x1080 screen
// changing every 16 ms, the hosts at up to 60 fps) through two real brokers
// at once, one recording and one not, and compares their CPU per frame
// relayed. Side by side, both brokers see the same moments of a shared,
// noisy machine: measured in turns, the broker's CPU at this load varied
// between turns by as much as recording adds. It reports medians over the
// rounds, and the frames written to the archives against those relayed.
func BenchmarkRecordingCPU(b *testing.B) {
	const seconds, rounds = 20, 5
	display := xtest.StartXvfb(b, 1920, 1080)
	xtest.StartPattern(b, display, "-mode", "counter", "-interval", "16")
	bin := xtest.Build(b, "./broker")
	type side struct {
		bp     *killableBroker
		c      *client.Client
		id     string
		host   *exec.Cmd
		j      *client.Joined
		cpu    float64 // broker CPU seconds at the start of the window
		frames uint64  // frames the viewer had at the start of the window
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := func(recording bool) *side {
		args := []string{}
		if !recording {
			args = append(args, "-no-record")
		}
		s := &side{bp: runBrokerProc(b, bin, b.TempDir(), args...)}
		u, _ := dial.BrokerURL(s.bp.url)
		var err error
		if s.c, err = client.New(client.Config{Broker: u, CAFile: s.bp.ca, Token: s.bp.admin.APIKey}); err != nil {
			b.Fatal(err)
		}
		sess, err := s.c.CreateSession(ctx, "bench-rec")
		if err != nil {
			b.Fatal(err)
		}
		s.id = sess.ID
		s.host = benchHost(b, display, "-broker", s.bp.url, "-ca", s.bp.ca, "-fps", "60", sess.Code)
		if s.j, err = s.c.Join(ctx, sess.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := s.j.Screenshot(ctx); err != nil {
			b.Fatal(err)
		}
		return s
	}
	stop := func(s *side) {
		s.c.EndSession(ctx, s.id)
		s.j.Close()
		s.host.Process.Kill()
		s.host.Wait()
	}
	var cpuOff, cpuOn, overhead []float64
	var relayed, written int64
	b.ResetTimer()
	for round := range rounds {
		off, on := start(false), start(true)
		time.Sleep(time.Second)
		t0 := time.Now()
		for _, s := range []*side{off, on} {
			s.cpu, s.frames = cpuSeconds(b, s.bp.cmd.Process.Pid), s.j.Frames()
		}
		time.Sleep(seconds * time.Second)
		elapsed := time.Since(t0).Seconds()
		// The broker's CPU in % of a core, and in ms per frame relayed.
		measure := func(s *side) (pct, perFrame float64) {
			used := cpuSeconds(b, s.bp.cmd.Process.Pid) - s.cpu
			frames := s.j.Frames() - s.frames
			if frames == 0 {
				b.Fatal("no frames reached a viewer")
			}
			return used / elapsed * 100, used * 1000 / float64(frames)
		}
		offPct, offFrame := measure(off)
		onPct, onFrame := measure(on)
		cpuOff, cpuOn = append(cpuOff, offPct), append(cpuOn, onPct)
		overhead = append(overhead, (onFrame/offFrame-1)*100)
		stop(off)
		stop(on)
		api := newAPIClient(b, on.bp.url, on.bp.ca, on.bp.admin.APIKey)
		rec := waitRecording(b, api, on.id, record.StateComplete)
		relayed += rec.Manifest.Video.Relayed
		written += rec.Manifest.Video.Written
		b.Logf("round %d: broker CPU %.1f%% without recording (%.3f ms a frame), %.1f%% with (%.3f ms a frame): %+.1f%%; frames relayed %d, written %d",
			round, offPct, offFrame, onPct, onFrame, overhead[len(overhead)-1], rec.Manifest.Video.Relayed, rec.Manifest.Video.Written)
		for _, s := range []*side{off, on} {
			s.bp.cmd.Process.Signal(os.Interrupt)
			s.bp.cmd.Wait()
		}
	}
	b.StopTimer()
	median := func(v []float64) float64 {
		slices.Sort(v)
		return (v[(len(v)-1)/2] + v[len(v)/2]) / 2
	}
	b.ReportMetric(median(cpuOff), "cpu-off-%")
	b.ReportMetric(median(cpuOn), "cpu-on-%")
	b.ReportMetric(median(overhead), "overhead-%")
	b.ReportMetric(float64(relayed), "frames-relayed")
	b.ReportMetric(float64(written), "frames-written")
	b.ReportMetric(float64(relayed-written), "frames-lost")
	b.ReportMetric(0, "ns/op")
}
