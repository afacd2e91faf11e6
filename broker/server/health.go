package server

import (
	"context"
	"encoding/json"
	"net/http"
	"syscall"
	"time"
)

// minFree is the free space below which a disk counts as full for the
// health check: a session's database rows and recording need more.
const minFree = 64 << 20

// serveHealth answers monitoring and load balancers: 200 when the broker
// can do its work, 503 with what stops it (its database cannot be read, a
// disk it writes to is full). It needs no login and names no paths.
func (b *Broker) serveHealth(w http.ResponseWriter, r *http.Request) {
	var problems []string
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := b.store.Check(ctx); err != nil {
		b.cfg.Logger.Error("health check: the database cannot be written", "err", err)
		problems = append(problems, "The database cannot be written.")
	}
	if end, ok := b.certs.expired(); ok {
		problems = append(problems, "The TLS certificate expired on "+end.UTC().Format(time.DateOnly)+": browsers and hosts refuse the broker.")
	}
	if diskFull(b.cfg.DataDir) {
		problems = append(problems, "The data directory's disk is full.")
	}
	if b.recorder != nil && diskFull(b.recorder.Dir()) {
		problems = append(problems, "The recordings directory's disk is full: sessions cannot start.")
	}
	status, body := http.StatusOK, map[string]any{"status": "ok"}
	if len(problems) > 0 {
		status, body = http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "problems": problems}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// diskFull reports whether the file system holding dir has less than
// minFree left for the broker.
func diskFull(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false // unknown: the database check speaks for it
	}
	return st.Bavail*uint64(st.Bsize) < minFree
}
