package rtc

import (
	"os"
	"runtime/debug"
)

// gcPercent is the collector's target when GOGC is not set. pion allocates
// a little for every packet it sends and receives, so with the default
// (100) a file transfer runs the collector every few milliseconds on a heap
// of a few megabytes; 400 measured about a quarter more throughput host →
// broker → viewer and costs a few tens of megabytes while data flows.
const gcPercent = 400

// TuneGC sets the collector for a program that moves media and data
// channels, unless the user chose with GOGC.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
}
