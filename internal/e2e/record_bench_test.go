package e2e

import (
	"context"
	"fmt"
	"os"
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
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return max(ns/1e9, (utime+stime)/100) // USER_HZ is 100 on Linux
}

// BenchmarkRecordingCPU streams the same workload (a 1920x1080 screen
// changing every 16 ms, the host at up to 60 fps) through the real broker with
// recording off and on, alternating, and reports the broker's CPU in each
// case, the overhead, and frames written to the archive against frames
// relayed.
func BenchmarkRecordingCPU(b *testing.B) {
	// Five rounds of each: the broker's CPU at this load varies by a few
	// tenths of a percent of a core between rounds, as much as recording
	// adds, so the medians are compared.
	const seconds, rounds = 20, 10
	display := xtest.StartXvfb(b, 1920, 1080)
	xtest.StartPattern(b, display, "-mode", "counter", "-interval", "16")
	bin := xtest.Build(b, "./broker")
	cpu := map[bool][]float64{}
	var relayed, written int64
	b.ResetTimer()
	for round := range rounds {
		recording := round%2 == 1
		dataDir := b.TempDir()
		args := []string{}
		if !recording {
			args = append(args, "-no-record")
		}
		bp := runBrokerProc(b, bin, dataDir, args...)
		u, _ := dial.BrokerURL(bp.url)
		c, err := client.New(client.Config{Broker: u, CAFile: bp.ca, Token: bp.admin.APIKey})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		sess, err := c.CreateSession(ctx, "bench-rec")
		if err != nil {
			b.Fatal(err)
		}
		host := benchHost(b, display, "-broker", bp.url, "-ca", bp.ca, "-fps", "60", sess.Code)
		j, err := c.Join(ctx, sess.ID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := j.Screenshot(ctx); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second)
		cpu0, t0 := cpuSeconds(b, bp.cmd.Process.Pid), time.Now()
		time.Sleep(seconds * time.Second)
		used := (cpuSeconds(b, bp.cmd.Process.Pid) - cpu0) / time.Since(t0).Seconds() * 100
		cpu[recording] = append(cpu[recording], used)
		c.EndSession(ctx, sess.ID)
		j.Close()
		host.Process.Kill()
		host.Wait()
		if recording {
			api := newAPIClient(b, bp.url, bp.ca, bp.admin.APIKey)
			rec := waitRecording(b, api, sess.ID, record.StateComplete)
			relayed += rec.Manifest.Video.Relayed
			written += rec.Manifest.Video.Written
			b.Logf("round %d: recording on, broker CPU %.1f%%, frames relayed %d, written %d, %+v", round, used, rec.Manifest.Video.Relayed, rec.Manifest.Video.Written, rec.Manifest.Video)
		} else {
			b.Logf("round %d: recording off, broker CPU %.1f%%", round, used)
		}
		cancel()
		bp.cmd.Process.Signal(os.Interrupt)
		bp.cmd.Wait()
	}
	b.StopTimer()
	median := func(v []float64) float64 {
		slices.Sort(v)
		return (v[(len(v)-1)/2] + v[len(v)/2]) / 2
	}
	off, on := median(cpu[false]), median(cpu[true])
	b.ReportMetric(off, "cpu-off-%")
	b.ReportMetric(on, "cpu-on-%")
	b.ReportMetric((on-off)/off*100, "overhead-%")
	b.ReportMetric(float64(relayed), "frames-relayed")
	b.ReportMetric(float64(written), "frames-written")
	b.ReportMetric(float64(relayed-written), "frames-lost")
	b.ReportMetric(0, "ns/op")
}
