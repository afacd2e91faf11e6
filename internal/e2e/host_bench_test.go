package e2e

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
)

// BenchmarkHostStillCPU measures what a session costs the user's computer
// while nothing on the screen moves: the CPU of the host and of the
// programs it ran, with a technician watching a still 1920x1080 desktop:
// the median of five windows of 6 s after the picture settled.
func BenchmarkHostStillCPU(b *testing.B) {
	const windows, window = 5, 6 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	display := xtest.StartXvfb(b, 1920, 1080)
	xtest.StartPattern(b, display)
	j, host := benchSession(b, ctx, display, "BENCH-STILL", []string{protocol.PermView, protocol.PermControl, protocol.PermClipboard})
	if _, err := j.Screenshot(ctx); err != nil {
		b.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	pid := host.Process.Pid
	b.ResetTimer()
	var pct []float64
	for range b.N * windows {
		cpu, t0 := hostCPUSeconds(b, pid), time.Now()
		time.Sleep(window)
		pct = append(pct, (hostCPUSeconds(b, pid)-cpu)/time.Since(t0).Seconds()*100)
	}
	b.StopTimer()
	// The median: a busy moment of the shared machine slows the host's
	// every wakeup.
	slices.Sort(pct)
	b.ReportMetric(pct[len(pct)/2], "still-cpu-%")
	b.ReportMetric(0, "ns/op")
}

// hostCPUSeconds is cpuSeconds of the host process plus the CPU time of
// the programs it ran and waited for (its clipboard readers).
func hostCPUSeconds(tb testing.TB, pid int) float64 {
	f := procStat(tb, pid)
	cutime, _ := strconv.ParseFloat(f[13], 64)
	cstime, _ := strconv.ParseFloat(f[14], 64)
	return cpuSeconds(tb, pid) + (cutime+cstime)/100
}
