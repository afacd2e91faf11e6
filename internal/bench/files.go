package main

import (
	"fmt"
	"time"
)

// File transfer and shell figures: Tether next to scp and ssh to a private
// sshd on the same machine, measured in the same run.
func init() {
	ft, echo := "BenchmarkFileTransfer", "BenchmarkShellEcho"
	ratio := func(v float64, all map[string]map[string]float64) bool { return v >= 0.3*all[ft]["scp-MB/s"] }
	ofSCP := func(unit string) func(map[string]map[string]float64) string {
		return func(all map[string]map[string]float64) string {
			return fmt.Sprintf("%.2f× scp", all[ft][unit]/all[ft]["scp-MB/s"])
		}
	}
	ofSSH := func(unit, sshUnit string) func(map[string]map[string]float64) string {
		return func(all map[string]map[string]float64) string {
			return fmt.Sprintf("%.2f× ssh, over %.0f keystrokes", all[echo][unit]/all[echo][sshUnit], all[echo]["keys"])
		}
	}
	figures = append(figures,
		figure{what: "File upload through the broker, 200 MB, SHA-256 verified (viewer → broker → host)", bench: ft, unit: "upload-MB/s", scale: 1, show: "MB/s",
			goal: "≥ 0.3× scp", check: ratio, note: ofSCP("upload-MB/s")},
		figure{what: "File download through the broker, 200 MB, SHA-256 verified (host → broker → viewer)", bench: ft, unit: "download-MB/s", scale: 1, show: "MB/s",
			goal: "≥ 0.3× scp", check: ratio, note: ofSCP("download-MB/s")},
		figure{what: "scp of the same file to localhost", bench: ft, unit: "scp-MB/s", scale: 1, show: "MB/s", goal: "reference"},
		figure{what: "Shell keystroke → echo through the broker, p50", bench: echo, unit: "p50-ms", scale: 1, show: "ms",
			goal: "≤ 2× ssh localhost", check: func(v float64, all map[string]map[string]float64) bool { return v <= 2*all[echo]["ssh-p50-ms"] },
			note: ofSSH("p50-ms", "ssh-p50-ms")},
		figure{what: "Shell keystroke → echo through the broker, p95", bench: echo, unit: "p95-ms", scale: 1, show: "ms",
			goal: "≤ 2× ssh localhost", check: func(v float64, all map[string]map[string]float64) bool { return v <= 2*all[echo]["ssh-p95-ms"] },
			note: ofSSH("p95-ms", "ssh-p95-ms")},
		figure{what: "ssh -tt localhost keystroke → echo, p50", bench: echo, unit: "ssh-p50-ms", scale: 1, show: "ms", goal: "reference"},
		figure{what: "ssh -tt localhost keystroke → echo, p95", bench: echo, unit: "ssh-p95-ms", scale: 1, show: "ms", goal: "reference"},
	)
	runs = append(runs, run{[]string{"go", "test", "-run", "^$", "-bench", "BenchmarkFileTransfer|BenchmarkShellEcho", "-benchtime", "1x", "-timeout", "10m", "./internal/e2e"}, 10 * time.Minute})
}
