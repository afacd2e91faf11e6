//go:build race

package capture

// The race detector slows Go code several times over; the portable path's
// hashing and conversion then need more time per poll.
const raceEnabled = true
