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
		// The floor: the same paths with nothing of Tether's on them.
		figure{what: "Floor: 200 MB over one bare data-channel hop (two processes, pion peers set up as Tether's)", bench: ft, unit: "hop-MB/s", scale: 1, show: "MB/s",
			goal: "reference", note: ofSCP("hop-MB/s")},
		figure{what: "Floor: 200 MB through a bare relay (three processes, as viewer → broker → host)", bench: ft, unit: "relay-MB/s", scale: 1, show: "MB/s",
			goal: "reference (the most the files lines above can reach)", note: ofSCP("relay-MB/s")},
		figure{what: "Floor: keystroke → echo over one bare data-channel hop, p50", bench: echo, unit: "hop-p50-ms", scale: 1, show: "ms",
			goal: "reference", note: ofSSH("hop-p50-ms", "ssh-p50-ms")},
		figure{what: "Floor: keystroke → echo through a bare relay, p50", bench: echo, unit: "relay-p50-ms", scale: 1, show: "ms",
			goal: "reference", note: ofSSH("relay-p50-ms", "ssh-p50-ms")},
		figure{what: "bash on a local terminal, keystroke → echo, p50 (no network: in both the Tether and the ssh figures)", bench: echo, unit: "bash-p50-ms", scale: 1, show: "ms", goal: "reference"},
		figure{what: "Floor of the shell through the broker: bare relay p50 + local bash p50", bench: echo, unit: "floor-p50-ms", scale: 1, show: "ms",
			goal: "reference (the least the shell line above can reach)", note: ofSSH("floor-p50-ms", "ssh-p50-ms")},
	)
	runs = append(runs, run{[]string{"go", "test", "-run", "^$", "-bench", "BenchmarkFileTransfer|BenchmarkShellEcho", "-benchtime", "1x", "-timeout", "10m", "./internal/e2e"}, 10 * time.Minute})
}
