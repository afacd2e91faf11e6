package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/signal"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/broker/webhook"
	"github.com/tether-support/tether/internal/joblog"
)

// processStart stands for the process's start: the package is initialised
// as the broker starts.
var processStart = time.Now()

// storeTimeout bounds the store's counts in a scrape: a scrape that waits
// longer is worth less than one without them.
const storeTimeout = 2 * time.Second

// Config configures the metrics handler.
type Config struct {
	Hub      *signal.Hub
	Store    *store.Store
	Auth     *auth.Authenticator
	Webhooks *webhook.Dispatcher
	// Version is the broker's version, for tether_build_info.
	Version string
	Logger  *slog.Logger
	Now     func() time.Time
}

func (c *Config) checkAndSetDefaults() error {
	if c.Hub == nil || c.Store == nil || c.Auth == nil || c.Webhooks == nil {
		return errors.New("metrics: missing Hub, Store, Auth or Webhooks")
	}
	if c.Version == "" {
		c.Version = "unknown"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Handler answers GET /metrics. Whoever mounts it checks who may read it.
type Handler struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	counting joblog.Failing // the store's counts, which a scrape leaves out while they fail
}

// New returns the metrics handler.
func New(cfg Config) (*Handler, error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, log: cfg.Logger.With("component", "metrics"),
		counting: joblog.Failing{What: "count waiting sessions and webhook deliveries for the metrics"}}, nil
}

// ServeHTTP writes the metrics. A scrape reads counters and the hub's
// live state, and asks the store for two counts that its indexes answer;
// nothing grows with the sessions held over time.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m Writer
	h.sessions(r.Context(), &m)
	h.signIns(&m)
	h.webhooks(r.Context(), &m)
	process(&m, h.cfg.Version)
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(m.Bytes())
}

func (h *Handler) sessions(ctx context.Context, m *Writer) {
	s := h.cfg.Hub.Stats()
	waiting, err := h.count(ctx, h.cfg.Store.CountWaitingSessions)
	states := []Sample{Labelled("state", "active", float64(s.Active))}
	if err == nil {
		states = append([]Sample{Labelled("state", "waiting", float64(waiting))}, states...)
	}
	m.Gauge("tether_sessions", "Sessions now, by state: waiting for the user's computer to join with its code, or active.", states...)
	m.Gauge("tether_hosts_connected", "Users' computers connected to a session now.", Value(float64(s.Hosts)))
	m.Gauge("tether_hosts_waiting_for_technician", "Users' computers that asked for a code and wait for a technician to claim it.", Value(float64(s.HostsWaiting)))
	m.Gauge("tether_viewers_connected", "Technicians' connections to sessions now (console or viewer command).", Value(float64(s.Viewers)))
	m.Counter("tether_sessions_created_total", "Sessions created, each with a support code, since the broker started.", Value(float64(s.Created)))
	m.Counter("tether_sessions_started_total", "Sessions the user's computer joined since the broker started.", Value(float64(s.Started)))
	var ended []Sample
	for _, cause := range signal.EndCauses {
		ended = append(ended, Labelled("cause", cause, float64(s.Ended[cause])))
	}
	m.Counter("tether_sessions_ended_total", "Sessions ended since the broker started, including those a stopped broker left live, ended as it starts, by cause: "+
		"user, technician, admin (another's session), declined (the user turned the technician away), code_expired, host_lost, display_gone, "+
		"abandoned (every technician left), recording_failed, shutdown, broker_stopped (ended as the broker starts again).", ended...)
	m.Gauge("tether_recordings_in_progress", "Session archives being written now.", Value(float64(s.Recording)))
	m.Counter("tether_recordings_failed_total", "Session archives that could not be started or whose writing failed, since the broker started.", Value(float64(s.RecordingsFailed)))
	relayed := func(from, channel string, n *atomic.Uint64) Sample {
		return Sample{Labels: []Label{{"from", from}, {"channel", channel}}, Value: float64(n.Load())}
	}
	t := s.Relayed
	m.Counter("tether_relay_received_bytes_total", "Bytes the broker received to relay since it started, from users' computers (host) and technicians (viewer), by channel: video (RTP), files, shell, and control (input, control and clipboard).",
		relayed("host", "video", &t.VideoFromHosts),
		relayed("host", "files", &t.FilesFromHosts), relayed("viewer", "files", &t.FilesFromViewers),
		relayed("host", "shell", &t.ShellFromHosts), relayed("viewer", "shell", &t.ShellFromViewers),
		relayed("host", "control", &t.ControlFromHosts), relayed("viewer", "control", &t.ControlFromViewers))
}

func (h *Handler) signIns(m *Writer) {
	c := h.cfg.Auth.SignInCounts()
	m.Counter("tether_sign_in_failures_total", "Failed console sign-ins since the broker started, by what was wrong.",
		Labelled("reason", "password", float64(c.BadPasswords)), Labelled("reason", "two_factor_code", float64(c.BadCodes)))
	m.Counter("tether_sign_in_lockouts_total", "Times sign-ins were locked out for a while after too many failures, since the broker started.", Value(float64(c.Lockouts)))
	m.Counter("tether_sign_ins_with_recovery_code_total", "Console sign-ins that gave a recovery code in place of a two-factor code, since the broker started.", Value(float64(c.RecoveryCodes)))
}

func (h *Handler) webhooks(ctx context.Context, m *Writer) {
	c := h.cfg.Webhooks.Counts()
	m.Counter("tether_webhook_deliveries_total", "Webhook deliveries finished since the broker started: taken by the endpoint, or failed after the last attempt.",
		Labelled("outcome", "succeeded", float64(c.Delivered)), Labelled("outcome", "failed", float64(c.Failed)))
	m.Counter("tether_webhook_attempts_retried_total", "Webhook attempts that failed and are tried again later, since the broker started.", Value(float64(c.Retried)))
	pending, err := h.count(ctx, h.cfg.Store.CountPendingWebhookDeliveries)
	if err == nil {
		m.Gauge("tether_webhook_deliveries_pending", "Webhook deliveries waiting for their next attempt now.", Value(float64(pending)))
	}
}

// count runs one of the store's counts; while they fail, the log says so
// once a minute rather than at every scrape.
func (h *Handler) count(ctx context.Context, f func(context.Context) (int, error)) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	n, err := f(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.counting.Failed(h.log, h.cfg.Now(), err)
	} else {
		h.counting.Worked(h.log, h.cfg.Now())
	}
	return n, err
}

// process writes what Prometheus's client libraries call the process and
// Go collectors' basics, under the same names.
func process(m *Writer, version string) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.Gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.",
		Value(float64(processStart.UnixNano())/1e9))
	if rss, ok := residentMemory(); ok {
		m.Gauge("process_resident_memory_bytes", "Resident memory size, in bytes.", Value(float64(rss)))
	}
	m.Gauge("go_goroutines", "Goroutines that currently exist.", Value(float64(runtime.NumGoroutine())))
	m.Gauge("go_memstats_heap_inuse_bytes", "Heap bytes in use.", Value(float64(ms.HeapInuse)))
	m.Gauge("tether_build_info", "The broker's version and the Go version it was built with; always 1.",
		Sample{Labels: []Label{{"version", version}, {"go_version", runtime.Version()}}, Value: 1})
}

// residentMemory reads the process's resident set size from
// /proc/self/statm (Linux); ok is false elsewhere.
func residentMemory() (int64, bool) {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}
