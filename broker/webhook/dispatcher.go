package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/signal"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/internal/joblog"
)

// DefaultBackoff is the wait before each retry: ×3 from 10 s, capped at 6 h.
var DefaultBackoff = []time.Duration{
	10 * time.Second, 30 * time.Second, 90 * time.Second, 270 * time.Second, 810 * time.Second,
	2430 * time.Second, 7290 * time.Second, 6 * time.Hour,
}

// Config configures a Dispatcher.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger
	// Now is the clock for timestamps, signatures and the retry schedule.
	Now func() time.Time
	// Backoff lists the waits before the second, third, … attempts of a
	// delivery; the last one repeats (default DefaultBackoff).
	Backoff []time.Duration
	// MaxAttempts bounds the attempts of one delivery (default 10).
	MaxAttempts int
	// Timeout bounds each attempt, connection to answer (default 10 s).
	Timeout time.Duration
	// Workers is how many deliveries may be under way at once (default
	// MaxEndpoints). Each endpoint has at most one under way, so that a
	// receiver that is slow or down holds one worker, not every one.
	Workers int
	// QueueSize bounds the deliveries handed to the workers at once
	// (default MaxEndpoints); the rest wait in the store.
	QueueSize int
	// PollInterval is how often the store is searched for deliveries that
	// came due (default 1 s). New events and redeliveries do not wait.
	PollInterval time.Duration
	// AllowLoopback lets endpoints on this machine (127.0.0.0/8, ::1,
	// localhost) be registered and called. For tests.
	AllowLoopback bool
	// LookupIP resolves endpoint host names (default: the system resolver).
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
}

func (c *Config) checkAndSetDefaults() error {
	if c.Store == nil {
		return errors.New("webhook: missing Store")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff
	}
	for _, b := range c.Backoff {
		if b <= 0 {
			return fmt.Errorf("webhook: backoff %v is not positive", b)
		}
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = MaxEndpoints
	}
	if c.QueueSize <= 0 {
		c.QueueSize = MaxEndpoints
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.LookupIP == nil {
		c.LookupIP = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	return nil
}

// backoff is the wait after attempt n (1-based) failed.
func (c *Config) backoff(n int) time.Duration {
	return c.Backoff[min(n, len(c.Backoff))-1]
}

// Dispatcher turns session events into signed deliveries and sends them,
// retrying with backoff. Every event and delivery is in the store before
// anything is sent, so pending deliveries survive a restart. It owns a
// scheduler goroutine that hands due deliveries to a bounded queue, and a
// pool of workers; Close cancels and waits for them. An endpoint has one
// delivery queued or under way at a time: one ticket system that is slow
// or down waits for its own answers and holds back nobody else's.
type Dispatcher struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	queue  chan *store.WebhookDelivery // only the scheduler sends
	wake   chan struct{}               // asks the scheduler to look now

	createMu sync.Mutex // held while an endpoint is checked and added

	seqMu   sync.Mutex
	lastSeq int64 // the last event's Envelope.Sequence

	// publicURL is the broker's address as its API is reached (see
	// SetPublicURL), for the links events carry.
	publicURL atomic.Pointer[string]

	mu   sync.Mutex
	busy map[string]bool // endpoints with a delivery queued or being attempted
	// unrecorded holds, by endpoint, the outcome of an attempt the store
	// refused to record (its disk is full, another process holds the
	// write lock). It is recorded on the endpoint's next turn instead of
	// sending the delivery again, which would go on at every poll without
	// being counted. One per endpoint at most: an endpoint has one delivery
	// under way, and gets no other turn while this one waits. A broker
	// stopped meanwhile sends the delivery again at its next start.
	unrecorded map[string]*outcome
	// subs counts the enabled endpoints per event type, so that the hub's
	// events cost nothing while nobody listens.
	subs map[string]int

	// Counted for the broker's metrics since it started.
	delivered, retried, failed atomic.Uint64
}

// Counts are the attempts the dispatcher made since it started, by outcome.
type Counts struct {
	Delivered uint64 // deliveries the endpoint took (2xx)
	Retried   uint64 // failed attempts to be tried again later
	Failed    uint64 // deliveries given up after their last attempt
}

// Counts returns the dispatcher's counts so far.
func (d *Dispatcher) Counts() Counts {
	return Counts{Delivered: d.delivered.Load(), Retried: d.retried.Load(), Failed: d.failed.Load()}
}

// New starts a Dispatcher; deliveries left pending by an earlier run are
// picked up at once.
func New(cfg Config) (*Dispatcher, error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "webhook"),
		ctx:    ctx,
		cancel: cancel,
		queue:  make(chan *store.WebhookDelivery, cfg.QueueSize),
		wake:   make(chan struct{}, 1),
		busy:   map[string]bool{},

		unrecorded: map[string]*outcome{},
	}
	d.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // the address check must see the endpoint, not a proxy
			DialContext:            d.cfg.dial,
			ForceAttemptHTTP2:      true,
			TLSHandshakeTimeout:    cfg.Timeout,
			MaxIdleConns:           16,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		// A redirect could lead anywhere; the endpoint must answer itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if err := d.refreshSubscriptions(context.Background()); err != nil {
		cancel()
		return nil, err
	}
	// Go on from the last number given out, which may be ahead of the clock
	// if it was set back while the broker was stopped.
	seq, err := cfg.Store.LastWebhookSequence(context.Background())
	if err != nil {
		cancel()
		return nil, err
	}
	d.lastSeq = seq
	d.wg.Add(1 + cfg.Workers)
	go d.schedule()
	for range cfg.Workers {
		go d.work()
	}
	return d, nil
}

// Close stops sending: attempts under way are cancelled and stay pending
// for the next start. Events published after Close are still stored.
func (d *Dispatcher) Close() error {
	d.cancel()
	d.wg.Wait()
	d.client.CloseIdleConnections()
	return nil
}

// SetPublicURL tells the dispatcher the broker's address as API clients
// reach it, e.g. https://support.example.com:8443, so that the links in
// events (recording.ready's url) work as they are, like the join and
// console links of the API. Until it is set they are relative to it.
func (d *Dispatcher) SetPublicURL(u string) {
	u = strings.TrimSuffix(u, "/")
	d.publicURL.Store(&u)
}

// link makes an API path absolute under the broker's public address.
func (d *Dispatcher) link(path string) string {
	if u := d.publicURL.Load(); u != nil {
		return *u + path
	}
	return path
}

// poke wakes the scheduler without blocking.
func (d *Dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Notify stores the webhook events a hub event means, with a delivery for
// each subscribed endpoint, and wakes the scheduler. It is the hub's
// signal.Config.Notify.
func (d *Dispatcher) Notify(ctx context.Context, e signal.Event) {
	if err := d.notify(ctx, e); err != nil {
		// session.ended is looked for again later (see catchUpEnded).
		d.log.ErrorContext(ctx, "webhook event not stored", "session", e.Session, "event", e.Type, "err", err)
	}
}

// notify stores the webhook events e means that some endpoint wants.
func (d *Dispatcher) notify(ctx context.Context, e signal.Event) error {
	if !slices.ContainsFunc(webhookTypes[e.Type], d.subscribed) {
		return nil
	}
	out, err := d.translate(ctx, e)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range out {
		if !d.subscribed(o.typ) {
			continue
		}
		if err := d.publish(ctx, e.Session, e.At, o); err != nil {
			errs = append(errs, fmt.Errorf("store %s: %w", o.typ, err))
		}
	}
	return errors.Join(errs...)
}

// HistoryKept is how long the broker keeps a delivery that is no longer
// pending, with its attempts, after its last attempt, and an event after
// it happened once none of its deliveries is left. Pending deliveries are
// kept until they are done.
const HistoryKept = 30 * 24 * time.Hour

// pruneHistory deletes the webhook history older than HistoryKept.
func (d *Dispatcher) pruneHistory(ctx context.Context, now time.Time) error {
	deliveries, events, err := d.cfg.Store.PruneWebhookHistory(ctx, now.Add(-HistoryKept))
	if deliveries > 0 || events > 0 {
		d.log.InfoContext(ctx, "old webhook history deleted", "deliveries", deliveries, "events", events)
	}
	return err
}

// The sessions catchUpEnded looks at: those that ended between a day and
// a minute ago. The minute leaves the hub time to publish session.ended
// itself; after a day the ticket has most likely been dealt with.
const (
	catchUpAfter = time.Minute
	catchUpUntil = 24 * time.Hour
)

// catchUpEnded publishes session.ended, as Notify would have, for the
// sessions that ended lately without one being stored: the broker stopped,
// or the database refused the event, between ending the session and
// storing its event. The session's row and last session.ended audit entry
// say how it ended.
func (d *Dispatcher) catchUpEnded(ctx context.Context, now time.Time) error {
	if !d.subscribed(SessionEndedType) {
		return nil
	}
	ids, err := d.cfg.Store.EndedSessionsWithoutEvent(ctx, SessionEndedType, now.Add(-catchUpUntil), now.Add(-catchUpAfter))
	if err != nil {
		return err
	}
	// One that cannot be sent does not hold up the others.
	var errs []error
	for _, id := range ids {
		if err := d.catchUpSession(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("session %s: %w", id, err))
			continue
		}
		d.log.InfoContext(ctx, "session.ended stored late: the broker stopped or the database failed before it was", "session", id)
	}
	return errors.Join(errs...)
}

// catchUpSession publishes the session.ended of session id, from its row
// and its last session.ended audit entry.
func (d *Dispatcher) catchUpSession(ctx context.Context, id string) error {
	sess, err := d.cfg.Store.SessionByID(ctx, id)
	if err != nil {
		return fmt.Errorf("look it up: %w", err)
	}
	trail, err := d.cfg.Store.Events(ctx, id)
	if err != nil {
		return fmt.Errorf("read its audit trail: %w", err)
	}
	// Without an audit entry, the session's row says why it ended.
	cause, _ := json.Marshal(map[string]string{"cause": sess.EndCause})
	e := signal.Event{Session: id, Type: "session.ended", At: sess.EndedAt, Detail: cause}
	for _, a := range trail {
		if a.Type == "session.ended" {
			e.Actor, e.At, e.Detail = a.Actor, a.At, json.RawMessage(a.Detail)
		}
	}
	return d.notify(ctx, e)
}

func (d *Dispatcher) publish(ctx context.Context, session string, at time.Time, o outgoing) error {
	ev := &store.WebhookEvent{ID: "evt_" + auth.RandomToken(16), Type: o.typ, Session: session, CreatedAt: at}
	if o.once {
		ev.OnceKey = o.typ + ":" + session
	}
	body, err := json.Marshal(Envelope{ID: ev.ID, Type: o.typ, Sequence: d.nextSequence(), CreatedAt: utc(at), Data: o.data})
	if err != nil {
		return err
	}
	ev.Payload = body
	deliveries, created, err := d.cfg.Store.AddWebhookEvent(ctx, ev, d.cfg.Now(), newDeliveryID)
	if err != nil {
		return err
	}
	if created && len(deliveries) > 0 {
		d.log.DebugContext(ctx, "webhook event queued", "event", ev.ID, "type", ev.Type, "session", session, "deliveries", len(deliveries))
		d.poke()
	}
	return nil
}

// nextSequence numbers an event: the clock in microseconds, or one more
// than the last number (also from before a restart) when the clock has not
// moved on or was set back.
func (d *Dispatcher) nextSequence() int64 {
	d.seqMu.Lock()
	defer d.seqMu.Unlock()
	d.lastSeq = max(d.lastSeq+1, d.cfg.Now().UnixMicro())
	return d.lastSeq
}

// subscribed reports whether an enabled endpoint wants events of type typ.
func (d *Dispatcher) subscribed(typ string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.subs == nil || d.subs[typ] > 0
}

// refreshSubscriptions reloads what the endpoints subscribe to; on error
// every type counts as subscribed, so nothing is missed.
func (d *Dispatcher) refreshSubscriptions(ctx context.Context) error {
	eps, err := d.cfg.Store.WebhookEndpoints(ctx)
	var subs map[string]int
	if err == nil {
		subs = map[string]int{}
		for _, ep := range eps {
			for _, typ := range ep.Events {
				if ep.Enabled {
					subs[typ]++
				}
			}
		}
	}
	d.mu.Lock()
	d.subs = subs
	if err == nil {
		// A deleted endpoint's attempts went with it.
		for id := range d.unrecorded {
			if !slices.ContainsFunc(eps, func(ep *store.WebhookEndpoint) bool { return ep.ID == id }) {
				delete(d.unrecorded, id)
			}
		}
	}
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("load webhook endpoints: %w", err)
	}
	return nil
}

func newDeliveryID() string { return "dlv_" + auth.RandomToken(12) }

// schedule hands due deliveries to the workers, never more than the queue
// holds and one per endpoint: the others stay in the store until there is
// room and their endpoint has answered. At the start and about once a
// minute it drops the old secrets whose time is over and publishes the
// session.ended events that were lost; at the start and about once a day,
// it deletes the old history.
func (d *Dispatcher) schedule() {
	defer d.wg.Done()
	tick := time.NewTicker(d.cfg.PollInterval)
	defer tick.Stop()
	var minutely, daily time.Time
	listing := joblog.Failing{What: "read the webhook deliveries that are due"}
	dropping := joblog.Failing{What: "drop the old webhook secrets whose time is over"}
	catching := joblog.Failing{What: "look for sessions that ended without a session.ended webhook event"}
	pruning := joblog.Failing{What: "delete the old webhook history"}
	for {
		d.enqueueDue(&listing)
		if now := d.cfg.Now(); now.Sub(minutely).Abs() >= time.Minute {
			d.housekeep(&dropping, now, d.cfg.Store.DropOldWebhookSecrets)
			d.housekeep(&catching, now, d.catchUpEnded)
			minutely = now
		}
		if now := d.cfg.Now(); now.Sub(daily).Abs() >= 24*time.Hour {
			d.housekeep(&pruning, now, d.pruneHistory)
			daily = now
		}
		select {
		case <-d.ctx.Done():
			return
		case <-tick.C:
		case <-d.wake:
		}
	}
}

// housekeep runs a job of the scheduler's; while it fails, f keeps the log
// to a line a minute.
func (d *Dispatcher) housekeep(f *joblog.Failing, now time.Time, job func(context.Context, time.Time) error) {
	err := job(d.ctx, now)
	switch {
	case err == nil:
		f.Worked(d.log, now)
	case d.ctx.Err() == nil:
		f.Failed(d.log, now, err)
	}
}

// enqueueDue queues the due deliveries there is room for. While the store
// fails, f keeps the log to a line a minute.
func (d *Dispatcher) enqueueDue(f *joblog.Failing) {
	free := cap(d.queue) - len(d.queue)
	if free == 0 {
		return
	}
	d.mu.Lock()
	busy := slices.Collect(maps.Keys(d.busy))
	d.mu.Unlock()
	due, err := d.cfg.Store.NextDueWebhookDeliveries(d.ctx, d.cfg.Now(), busy)
	if err != nil {
		if d.ctx.Err() == nil {
			f.Failed(d.log, d.cfg.Now(), err)
		}
		return
	}
	f.Worked(d.log, d.cfg.Now())
	for _, dl := range due {
		if free == 0 {
			return
		}
		d.mu.Lock()
		skip := d.busy[dl.EndpointID]
		d.busy[dl.EndpointID] = true
		d.mu.Unlock()
		if skip {
			continue
		}
		d.queue <- dl // there is room: only this goroutine sends
		free--
	}
}

func (d *Dispatcher) work() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case dl := <-d.queue:
			attempted := d.deliver(dl)
			d.mu.Lock()
			delete(d.busy, dl.EndpointID)
			d.mu.Unlock()
			if attempted {
				d.poke() // there is room in the queue; a failed load waits for the tick
			}
		}
	}
}

// deliver makes one attempt of a delivery and records it; false means no
// attempt was made or recorded. When an earlier attempt to the endpoint is
// still to be recorded, it records that instead.
func (d *Dispatcher) deliver(queued *store.WebhookDelivery) bool {
	d.mu.Lock()
	o := d.unrecorded[queued.EndpointID]
	delete(d.unrecorded, queued.EndpointID)
	d.mu.Unlock()
	if o != nil {
		return d.record(o)
	}

	ctx, id := d.ctx, queued.ID
	dl, err := d.cfg.Store.WebhookDeliveryByID(ctx, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			d.log.Error("load webhook delivery", "delivery", id, "err", err)
		}
		return false
	}
	ep, err := d.cfg.Store.WebhookEndpointByID(ctx, dl.EndpointID)
	if err != nil || !ep.Enabled || dl.State != store.DeliveryPending {
		return false // deleted or disabled meanwhile, or done
	}
	if !slices.Contains(ep.Events, dl.EventType) {
		// An admin took the type off the endpoint's events since: the
		// receiver may be refusing it, and must not be sent it again.
		a := &store.WebhookAttempt{DeliveryID: dl.ID, Attempt: dl.Attempts + 1, At: d.cfg.Now(),
			Error: "not sent: the endpoint no longer takes " + dl.EventType + " events"}
		return d.record(&outcome{attempt: a, state: store.DeliveryFailed, endpoint: ep.ID, host: hostOf(ep.URL), eventType: dl.EventType, unsubscribed: true})
	}
	ev, err := d.cfg.Store.WebhookEventByID(ctx, dl.EventID)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("load webhook event", "delivery", id, "event", dl.EventID, "err", err)
		}
		return false
	}

	a := &store.WebhookAttempt{DeliveryID: dl.ID, Attempt: dl.Attempts + 1, At: d.cfg.Now()}
	a.StatusCode, a.Response, a.Duration, err = d.post(ctx, ep, ev, dl.ID)
	if a.StatusCode == 0 && ctx.Err() != nil {
		// Cut short by shutting down: not the endpoint's fault; tried again
		// on the next start. An answer that came is recorded: a 2xx must
		// not be sent again.
		return false
	}
	o = &outcome{attempt: a, state: store.DeliverySucceeded, endpoint: ep.ID, host: hostOf(ep.URL), eventType: ev.Type}
	if err != nil {
		a.Error = err.Error()
		o.state = store.DeliveryFailed
		if a.Attempt < d.cfg.MaxAttempts {
			o.state, o.next = store.DeliveryPending, d.cfg.Now().Add(d.cfg.backoff(a.Attempt))
		}
	}
	return d.record(o)
}

// outcome is an attempt made, to be recorded.
type outcome struct {
	attempt *store.WebhookAttempt
	state   string    // the delivery's state after it
	next    time.Time // when the delivery is due again, if still pending
	// For the log.
	endpoint, host, eventType string
	refused                   bool // the store refused it before
	unsubscribed              bool // not sent: the endpoint no longer takes eventType
}

// record stores an attempt's outcome and logs it. When the store refuses,
// the outcome is kept for the endpoint's next turn and false is returned:
// the delivery is still due, and the tick, not at once, tries again.
func (d *Dispatcher) record(o *outcome) bool {
	a := o.attempt
	log := d.log.With("endpoint", o.endpoint, "host", o.host, "delivery", a.DeliveryID, "event", o.eventType,
		"attempt", a.Attempt, "status", a.StatusCode, "duration", a.Duration.Round(time.Millisecond))
	// The record must not be lost to a shutdown that starts now.
	err := d.cfg.Store.RecordWebhookAttempt(context.WithoutCancel(d.ctx), a, o.state, o.next)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return true // the endpoint was deleted meanwhile
	case err != nil:
		if !o.refused {
			log.Error("cannot record webhook attempt; it is recorded, not sent again, once the database takes it", "err", err)
			o.refused = true
		}
		d.mu.Lock()
		d.unrecorded[o.endpoint] = o
		d.mu.Unlock()
		return false
	case o.refused:
		log.Info("webhook attempt recorded after the database refused it")
	}
	switch {
	case o.unsubscribed:
		log.Info("webhook delivery dropped: the endpoint no longer takes its event type")
	case o.state == store.DeliverySucceeded:
		d.delivered.Add(1)
		log.Info("webhook delivered")
	case o.state == store.DeliveryPending:
		d.retried.Add(1)
		log.Warn("webhook attempt failed; will retry", "err", a.Error, "next", o.next)
	default:
		d.failed.Add(1)
		log.Error("webhook delivery failed for good", "err", a.Error)
	}
	return true
}

// maxExcerpt bounds what is kept of a failed answer for the admin to read:
// one line, enough for a receiver's reason ("invalid signature") but not
// the page of an internal service a URL was pointed at. Nothing is kept of
// a successful answer.
const maxExcerpt = 200

// excerpt is the first non-empty line of body, at most maxExcerpt bytes,
// as printable text.
func excerpt(body []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimLeftFunc(body, unicode.IsSpace), []byte("\n"))
	line = bytes.TrimSpace(line[:min(len(line), maxExcerpt)])
	s := strings.ToValidUTF8(string(line), "") // the limit may cut a character
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// post sends one signed request. An error means the attempt failed.
func (d *Dispatcher) post(ctx context.Context, ep *store.WebhookEndpoint, ev *store.WebhookEvent, delivery string) (status int, response string, took time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(ev.Payload))
	if err != nil {
		return 0, "", 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	now := d.cfg.Now()
	req.Header.Set(SignatureHeader, Sign(ep.Secret, now.Unix(), ev.Payload, oldSecrets(ep, now)...))
	req.Header.Set(DeliveryHeader, delivery)
	req.Header.Set(EventHeader, ev.Type)
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, "", time.Since(start), describe(err, d.cfg.Timeout)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	took = time.Since(start)
	response = excerpt(head)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, "", took, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return resp.StatusCode, response, took, fmt.Errorf("HTTP %d: redirects are not followed; register the final URL", resp.StatusCode)
	default:
		return resp.StatusCode, response, took, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
}

// describe says why a request got no answer, without the URL (whose query
// may hold a receiver's token).
func describe(err error, timeout time.Duration) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %v", timeout)
	}
	return err
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
