package main

import "time"

// What a session costs the user's computer while nothing on the screen
// moves: a support session should not drain a laptop's battery.
func init() {
	const still = "BenchmarkHostStillCPU"
	runs = append(runs, run{[]string{"go", "test", "-run", "^$", "-bench", still, "-benchtime", "1x", "-timeout", "5m", "./internal/e2e"}, 5 * time.Minute})
	figures = append(figures,
		figure{what: "Host CPU on a still 1920x1080 screen, a technician watching (the host and the programs it runs), median of five windows of 6 s", bench: still, unit: "still-cpu-%", scale: 1, show: "% of a core",
			goal: "≤ 2 % of a core", check: atMost(2)},
	)
}
