package main

import (
	"fmt"
	"time"
)

// The recording benchmarks: what recording every session costs the broker,
// and whether the archive keeps every frame the broker relays.
func init() {
	runs = append(runs, run{[]string{"go", "test", "-run", "^$", "-bench", "BenchmarkRecordingCPU", "-benchtime", "1x", "-timeout", "10m", "./internal/e2e"}, 10 * time.Minute})
	const rec = "BenchmarkRecordingCPU"
	figures = append(figures,
		figure{what: "Broker CPU, one 1080p session changing every 16 ms (host at 60 fps), recording off, median", bench: rec, unit: "cpu-off-%", scale: 1, show: "% of a core", goal: "reference"},
		figure{what: "Broker CPU, same workload, recording on (WebM segments, events, seals), median", bench: rec, unit: "cpu-on-%", scale: 1, show: "% of a core", goal: "reference"},
		figure{what: "Broker CPU added by recording", bench: rec, unit: "overhead-%", scale: 1, show: "%", goal: "≤ 10 %", check: atMost(10),
			note: func(map[string]map[string]float64) string {
				return "per frame relayed, median of 5 rounds of 20 s, each with a recording and a non-recording broker side by side"
			}},
		figure{what: "Frames relayed but not written to the archive", bench: rec, unit: "frames-lost", scale: 1, show: "frames", goal: "0", check: atMost(0),
			note: func(all map[string]map[string]float64) string {
				return fmt.Sprintf("%.0f written of %.0f relayed", all[rec]["frames-written"], all[rec]["frames-relayed"])
			}},
	)
}
