// Package joblog keeps the log of a background job that keeps failing readable.
package joblog

import (
	"log/slog"
	"time"
)

// remindEvery is how often a background job that keeps failing says so
// again in the log.
const remindEvery = time.Minute

// Failing keeps the log of a background job that runs every second or so
// readable while the job keeps failing (the database cannot be read, its
// disk is full): the first failure is logged, then a reminder a minute,
// and one line once the job works again. A line every second would bury
// everything else the broker logs. It belongs to one goroutine.
type Failing struct {
	What     string    // what the job does, e.g. "end the sessions whose support code expired"
	since    time.Time // when the job started failing; zero while it works
	reminded time.Time // the last line logged about it
}

// Failed notes that the job failed at now with err.
func (f *Failing) Failed(log *slog.Logger, now time.Time, err error) {
	switch {
	case f.since.IsZero():
		f.since, f.reminded = now, now
		log.Error("cannot "+f.What+"; the broker keeps trying and logs when it works again", "err", err)
	case now.Sub(f.reminded) >= remindEvery:
		f.reminded = now
		log.Error("still cannot "+f.What+"; the broker keeps trying", "failing_for", now.Sub(f.since).Round(time.Second), "err", err)
	}
}

// Worked notes that the job worked at now.
func (f *Failing) Worked(log *slog.Logger, now time.Time) {
	if f.since.IsZero() {
		return
	}
	log.Info("can "+f.What+" again", "failed_for", now.Sub(f.since).Round(time.Second))
	f.since = time.Time{}
}
