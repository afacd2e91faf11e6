// Command bench runs the project's benchmarks and writes BENCHMARKS.md:
// every figure next to its goal, the machine it was measured on, and the
// command that reproduces it. `make bench` runs it.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// figure is one line of the report.
type figure struct {
	what  string
	bench string // benchmark name without the -N suffix
	unit  string // metric reported by the benchmark
	scale float64
	show  string // unit shown in the report
	goal  string
	check func(v float64, all map[string]map[string]float64) bool
}

var figures = []figure{
	{what: "Capture 1920x1080, persistent XShm (fast path, cursor drawn)", bench: "BenchmarkCaptureXShm", unit: "ns/op", scale: 1e-6, show: "ms/frame",
		goal: "≤ 2× raw XShm GetImage", check: func(v float64, all map[string]map[string]float64) bool {
			return v <= 2*all["BenchmarkRawXShmGetImage"]["ns/op"]
		}},
	{what: "Capture 1920x1080, raw XShm GetImage (the floor)", bench: "BenchmarkRawXShmGetImage", unit: "ns/op", scale: 1e-6, show: "ms/frame", goal: "reference"},
	{what: "Capture 1920x1080, kbinani/screenshot (portable path)", bench: "BenchmarkCapturePortable", unit: "ns/op", scale: 1e-6, show: "ms/frame", goal: "reference (portable fallback)"},
	{what: "BGRA→I420 1920x1080 (libyuv)", bench: "BenchmarkToI420/1920x1080", unit: "ns/op", scale: 1e-6, show: "ms/frame", goal: "≤ 2 ms", check: below(2e6)},
	{what: "BGRA→I420 1280x720 (libyuv)", bench: "BenchmarkToI420/1280x720", unit: "ns/op", scale: 1e-6, show: "ms/frame", goal: "≤ 1 ms", check: below(1e6)},
	{what: "VP8 delta frame 1920x1080 (conversion + encode)", bench: "BenchmarkEncodeVP8Delta/1920x1080", unit: "ns/op", scale: 1e-6, show: "ms/frame",
		goal: "capture + encode ≤ 16.7 ms (60 fps budget)", check: func(v float64, all map[string]map[string]float64) bool {
			return v+all["BenchmarkCaptureXShm"]["ns/op"] <= 16.7e6
		}},
	{what: "VP8 delta frame 1280x720 (conversion + encode)", bench: "BenchmarkEncodeVP8Delta/1280x720", unit: "ns/op", scale: 1e-6, show: "ms/frame", goal: "≤ 8 ms", check: below(8e6)},
	{what: "VP8 keyframe 1920x1080", bench: "BenchmarkEncodeVP8Key/1920x1080", unit: "ns/op", scale: 1e-6, show: "ms/frame", goal: "reference (on request only)"},
	{what: "Frames delivered to a viewer, 1080p changing every frame, 30 s", bench: "BenchmarkStream1080p", unit: "fps", scale: 1, show: "fps", goal: "≥ 30 fps", check: atLeast(30)},
	{what: "Host RSS while streaming 1080p", bench: "BenchmarkStream1080p", unit: "host-MB", scale: 1, show: "MB", goal: "≤ 150 MB", check: atMost(150)},
	{what: "Broker RSS, idle (no session)", bench: "BenchmarkStream1080p", unit: "broker-idle-MB", scale: 1, show: "MB", goal: "≤ 50 MB", check: atMost(50)},
	{what: "Broker RSS with one 1080p session", bench: "BenchmarkStream1080p", unit: "broker-session-MB", scale: 1, show: "MB", goal: "reference"},
}

func below(ns float64) func(float64, map[string]map[string]float64) bool {
	return func(v float64, _ map[string]map[string]float64) bool { return v <= ns }
}
func atLeast(x float64) func(float64, map[string]map[string]float64) bool {
	return func(v float64, _ map[string]map[string]float64) bool { return v >= x }
}
func atMost(x float64) func(float64, map[string]map[string]float64) bool {
	return func(v float64, _ map[string]map[string]float64) bool { return v <= x }
}

// runs are the benchmark commands, in order.
var runs = [][]string{
	{"go", "test", "-run", "^$", "-bench", ".", "-benchtime", "200x", "./host/capture", "./host/encode"},
	{"go", "test", "-run", "^$", "-bench", "BenchmarkStream1080p", "-benchtime", "1x", "-timeout", "10m", "./internal/e2e"},
}

func main() {
	out := flag.String("out", "BENCHMARKS.md", "report to write")
	flag.Parse()
	results := map[string]map[string]float64{}
	var raw bytes.Buffer
	for _, args := range runs {
		fmt.Fprintln(os.Stderr, "running:", strings.Join(args, " "))
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stderr = os.Stderr
		data, err := cmd.Output()
		os.Stderr.Write(data)
		raw.Write(data)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", strings.Join(args, " "), "failed:", err)
			os.Exit(1)
		}
		parse(data, results)
	}
	if err := os.WriteFile(*out, report(results, raw.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "wrote", *out)
}

// parse reads `go test -bench` lines: name-N  iterations  value unit ...
func parse(data []byte, into map[string]map[string]float64) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		m := into[name]
		if m == nil {
			m = map[string]float64{}
			into[name] = m
		}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
	}
}

func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s/%s, %s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func report(results map[string]map[string]float64, raw string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Benchmarks\n\nMeasured %s on %s, all in one run of `make bench`.\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine())
	fmt.Fprintf(&b, "These machines are shared and noisy: compare figures within one run.\n\n")
	fmt.Fprintf(&b, "| what | measured | goal | met |\n| --- | --- | --- | --- |\n")
	for _, f := range figures {
		v, ok := results[f.bench][f.unit]
		if !ok {
			fmt.Fprintf(&b, "| %s | not measured | %s | no |\n", f.what, f.goal)
			continue
		}
		met := "—"
		if f.check != nil {
			met = "no"
			if f.check(v, results) {
				met = "yes"
			}
		}
		fmt.Fprintf(&b, "| %s | %.2f %s | %s | %s |\n", f.what, v*f.scale, f.show, f.goal, met)
	}
	fmt.Fprintf(&b, "\n## How to reproduce\n\n`make bench` (installs what is missing, builds, runs the commands below, rewrites this file).\n\n")
	for _, args := range runs {
		fmt.Fprintf(&b, "    %s\n", strings.Join(args, " "))
	}
	fmt.Fprintf(&b, "\nCapture and stream figures run against a private `Xvfb -screen 0 1920x1080x24 -noreset`; the stream test paints a changing counter with `testdata/xpattern -mode counter`, so capture and encode are inside the measurement, and runs the real `bin/broker` and `bin/host` as separate processes (their RSS is read from /proc).\n")
	fmt.Fprintf(&b, "\n## Raw output\n\n```\n%s```\n", raw)
	return b.Bytes()
}
