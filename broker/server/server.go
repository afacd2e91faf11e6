// Package server assembles the broker: storage, certificates, the media
// API, the session hub, the REST API and the embedded web UI, served as
// HTTPS and WSS on one TCP port with WebRTC media on one UDP port, and on
// the TCP port for peers whose network lets no UDP through.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/tether-support/tether/broker/api"
	"github.com/tether-support/tether/broker/auth"
	"github.com/tether-support/tether/broker/metrics"
	"github.com/tether-support/tether/broker/record"
	"github.com/tether-support/tether/broker/signal"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/broker/webhook"
	"github.com/tether-support/tether/certs"
	"github.com/tether-support/tether/internal/rtc"
	"github.com/tether-support/tether/web"
)

// InitialAdminFile is written on first start with the admin's credentials.
const InitialAdminFile = "initial-admin.json"

// Config is the broker's configuration.
type Config struct {
	// Addr is the HTTPS listen address, e.g. ":8443".
	Addr string
	// DataDir holds the database, certificates and recordings.
	DataDir string
	// UDPPort carries all WebRTC media.
	UDPPort int
	// PublicAddr is the host name or IP announced to peers and used in
	// links; empty means "localhost".
	PublicAddr string
	// CodeTTL is the default support code lifetime.
	CodeTTL time.Duration
	// ViewerGrace is how long a session the user joined waits for a
	// technician who left.
	ViewerGrace time.Duration
	// ConsentTimeout is how long the user has to answer; no answer is no.
	ConsentTimeout time.Duration
	// Organisation is shown to users next to technicians' names.
	Organisation string
	Logger       *slog.Logger
	Now          func() time.Time

	// Webhooks tunes webhook delivery; its Store, Logger and Now are the broker's.
	Webhooks webhook.Config
	// LoginTTL and LoginIdle end console logins: at the latest after
	// LoginTTL, and after LoginIdle without use (defaults 12 h, 30 min).
	LoginTTL, LoginIdle time.Duration
	// TLSCertFile and TLSKeyFile are the broker's own certificate chain and
	// key (PEM), e.g. from the organisation's CA or Let's Encrypt, read
	// again when they change. Without them the broker issues itself a
	// certificate from a development CA it keeps in DataDir/certs.
	TLSCertFile, TLSKeyFile string
	// TrustedProxies are reverse proxies in front of the broker: for a
	// request from one of them, the client is who X-Forwarded-For says.
	TrustedProxies []netip.Prefix
	// PublicURL is the https:// address users reach the broker by, for
	// links, when it is not https://PublicAddr:port (a reverse proxy on
	// port 443 in front of the broker's port).
	PublicURL string
	// HostBinary is the Linux host program offered on join pages (default:
	// "host" next to the broker's executable, as `make build` puts it).
	HostBinary string
	// Recording is the recording policy.
	Recording RecordingConfig
	// Version is the broker's version, as /metrics reports it.
	Version string

	// readTimeout is how long a request may take to arrive, headers and
	// body (default readTimeout; tests shorten it).
	readTimeout time.Duration
}

// readTimeout is how long a client has to send a request: the largest body
// the API takes, 64 KiB, arrives in it over a link of 9 kbit/s.
const readTimeout = time.Minute

func (c *Config) checkAndSetDefaults() error {
	if c.Addr == "" {
		c.Addr = ":8443"
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.Recording.Dir == "" {
		c.Recording.Dir = filepath.Join(c.DataDir, "recordings")
	}
	if c.UDPPort == 0 {
		c.UDPPort = 8443
	}
	// A hundred years at most: "keep forever" is 0, and a number of days
	// past what a duration holds (292 years) once came out as a cutoff in
	// the future, deleting every archive at start.
	if c.Recording.RetentionDays < 0 || c.Recording.RetentionDays > maxRetentionDays {
		return fmt.Errorf("-retention-days %d: give a number of days up to %d, or 0 to keep archives", c.Recording.RetentionDays, maxRetentionDays)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("give both -tls-cert and -tls-key, or neither")
	}
	if c.PublicURL != "" {
		u, err := checkPublicURL(c.PublicURL)
		if err != nil {
			return err
		}
		c.PublicURL = u
	}
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		return fmt.Errorf("UDP port %d is out of range", c.UDPPort)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.readTimeout == 0 {
		c.readTimeout = readTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HostBinary == "" {
		if exe, err := os.Executable(); err == nil {
			c.HostBinary = filepath.Join(filepath.Dir(exe), "host")
		}
	}
	return nil
}

// sameDir reports whether a and b are the same existing directory.
func sameDir(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// InitialAdmin is the content of InitialAdminFile.
type InitialAdmin struct {
	User     string `json:"user"`
	Password string `json:"password"`
	APIKey   string `json:"api_key"`
}

// Broker is a configured, listening broker.
type Broker struct {
	cfg      Config
	store    *store.Store
	auth     *auth.Authenticator
	rtcAPI   *rtc.API
	hub      *signal.Hub
	webhooks *webhook.Dispatcher
	recorder *record.Recorder
	stop     context.CancelFunc // the broker's own goroutines
	wg       sync.WaitGroup
	port     *sharedPort // HTTPS, and media over TCP
	srv      *http.Server
	url      string
	caFile   string
	newAdmin bool
	// recordingWarning says the recordings hold archives this broker
	// cannot read (see unreadableRecordings); "" when all is well.
	recordingWarning string
	hostBinary       string
	lock             *os.File // held while the broker uses the data directory
	recordingsLock   *os.File // held while the broker writes archives
	certs            *certSource
}

// New opens storage, prepares certificates and listens. Run serves.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "broker")
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if err := privateDataDir(cfg.DataDir, log); err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, hostBinary: cfg.HostBinary}
	ok := false
	defer func() {
		if !ok {
			b.close()
		}
	}()

	var err error
	if b.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if !cfg.Recording.Disabled {
		if same, _ := sameDir(cfg.Recording.Dir, cfg.DataDir); same {
			return nil, fmt.Errorf("-recordings %s is the data directory: give the recordings a directory of their own, or leave -recordings out (they go to %s)", cfg.Recording.Dir, filepath.Join(cfg.DataDir, "recordings"))
		}
		if b.recordingsLock, err = lockRecordingsDir(cfg.Recording.Dir); err != nil {
			return nil, err
		}
	}
	// What the store holds from before now was written by an earlier broker:
	// the last signs of life of the sessions it left live.
	started := cfg.Now()
	if b.store, err = store.OpenSQLite(ctx, filepath.Join(cfg.DataDir, "tether.db")); err != nil {
		return nil, err
	}
	if err := sealSecrets(ctx, b.store, cfg.DataDir, log); err != nil {
		return nil, err
	}
	authn, err := auth.New(auth.Config{Store: b.store, Logger: cfg.Logger, Now: cfg.Now, LoginTTL: cfg.LoginTTL, IdleTimeout: cfg.LoginIdle})
	if err != nil {
		return nil, err
	}
	b.auth = authn
	if err := b.ensureAdmin(ctx, authn); err != nil {
		return nil, err
	}

	public := cfg.PublicAddr
	if public == "" {
		public = "localhost"
	}
	hostname, _ := os.Hostname()
	certSrc := &certSource{now: cfg.Now, log: log, certFile: cfg.TLSCertFile, keyFile: cfg.TLSKeyFile}
	if cfg.PublicURL == "" { // behind a proxy, the proxy's certificate is the one users see
		certSrc.name = public
	}
	if cfg.TLSCertFile == "" {
		certSrc.devDir = filepath.Join(cfg.DataDir, "certs")
		certSrc.devNames = []string{"localhost", "127.0.0.1", "::1", hostname, public}
		b.caFile = filepath.Join(certSrc.devDir, certs.CAFile)
	}
	if _, err := certSrc.get(); err != nil {
		return nil, err
	}
	b.certs = certSrc

	tcp, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	b.port = newSharedPort(tcp, log)

	// Congestion control paces what is relayed to each viewer to what its
	// link carries, and the relay asks the host for no more than the
	// narrowest of them receives (the relay picks where each starts).
	rtcCfg := rtc.Config{UDPPort: cfg.UDPPort, TCPListener: b.port.ice, PlayoutDelay: true,
		CongestionControl: true, MinBitrate: 150_000, StartBitrate: 4_000_000, MaxBitrate: 50_000_000}
	if cfg.PublicAddr != "" {
		ip, err := rtc.ResolveIP(cfg.PublicAddr)
		if err != nil {
			return nil, fmt.Errorf("public address: %w", err)
		}
		rtcCfg.PublicIP = ip
	}
	if b.rtcAPI, err = rtc.NewAPI(rtcCfg); err != nil {
		return nil, err
	}
	whCfg := cfg.Webhooks
	whCfg.Store, whCfg.Logger, whCfg.Now = b.store, cfg.Logger, cfg.Now
	if b.webhooks, err = webhook.New(whCfg); err != nil {
		return nil, err
	}
	var recovered []*record.Manifest
	if b.recorder, recovered, err = b.startRecorder(ctx); err != nil {
		return nil, err
	}
	b.hub, err = signal.New(signal.Config{Store: b.store, Auth: authn, API: b.rtcAPI, Logger: cfg.Logger, Now: cfg.Now, CodeTTL: cfg.CodeTTL, ViewerGrace: cfg.ViewerGrace,
		ConsentTimeout: cfg.ConsentTimeout, Organisation: cfg.Organisation, Notify: b.webhooks.Notify, Recorder: b.recorder})
	if err != nil {
		return nil, err
	}
	if err := b.hub.EndInterrupted(ctx, started); err != nil {
		return nil, err
	}

	port := b.port.Addr().(*net.TCPAddr).Port
	b.url = "https://" + net.JoinHostPort(public, strconv.Itoa(port))
	if port == 443 {
		b.url = "https://" + public
	}
	if cfg.PublicURL != "" {
		b.url = cfg.PublicURL
	}
	restAPI, err := api.New(api.Config{Store: b.store, Auth: authn, Hub: b.hub, Logger: cfg.Logger, Now: cfg.Now, PublicURL: b.url,
		NeedsDevCA: b.usersNeedDevCA(), Recorder: b.recorder})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	restAPI.Register(mux)
	restAPI.RegisterWebhooks(mux, b.webhooks)
	// The archives of the sessions a stopped broker left live are ready
	// now, incomplete: ticket systems hear of them as of any other, after
	// the session's end, with the link (known to the webhooks from here on).
	for _, m := range recovered {
		b.hub.RecordingSealed(m)
	}
	mux.HandleFunc("GET /join/{code}", b.serveJoin)
	// A link copied with a slash at its end is the same link.
	mux.HandleFunc("GET /join/{code}/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/join/"+url.PathEscape(r.PathValue("code")), http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /join/{code}/host", b.serveHostDownload)
	mux.HandleFunc("GET /join.css", serveJoinCSS)
	mux.HandleFunc("GET /ws/host", b.hub.ServeHost)
	mux.HandleFunc("GET /ws/viewer", b.hub.ServeViewer)
	console, err := loadConsoleFiles(web.FS())
	if err != nil {
		return nil, fmt.Errorf("console files: %w", err)
	}
	mux.Handle("GET /console/", http.StripPrefix("/console/", console))
	// The console's entry points answer with its index page; navigation
	// inside the app uses the URL fragment.
	serveIndex := func(w http.ResponseWriter, r *http.Request) { console.serve(w, r, "index.html") }
	mux.HandleFunc("GET /{$}", serveIndex)
	mux.HandleFunc("GET /console", serveIndex)
	mux.HandleFunc("GET /healthz", b.serveHealth)
	metricsHandler, err := metrics.New(metrics.Config{Hub: b.hub, Store: b.store, Auth: authn, Webhooks: b.webhooks,
		Version: cfg.Version, Logger: cfg.Logger, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	mux.HandleFunc("GET /metrics", restAPI.Guard(auth.ScopeMetricsRead, metricsHandler))
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return certSrc.get() }}
	// A client that sends a request's headers and then its body a byte at a
	// time, or never, is cut off after ReadTimeout rather than keeping a
	// connection and the goroutine serving it as long as it likes. The
	// server lifts that deadline once the body is in, so it does not limit
	// how long a handler works or a response (a recording's download) takes
	// to go out, and WebSocket connections, which have no body, keep only the
	// deadlines the hub sets. Idle keep-alive connections close after
	// IdleTimeout.
	b.srv = &http.Server{
		Handler:           realClient(cfg.TrustedProxies, securityHeaders(mux)),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.readTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	log.Info("broker listening", "https", b.port.Addr().String(), "udp", cfg.UDPPort, "data", cfg.DataDir, "recording", b.recorder != nil)
	var bg context.Context
	bg, b.stop = context.WithCancel(context.Background())
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.retentionLoop(bg)
	}()
	ok = true
	return b, nil
}

// ensureAdmin creates the first admin account and API key on first start.
func (b *Broker) ensureAdmin(ctx context.Context, authn *auth.Authenticator) (err error) {
	n, err := b.store.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	admin := InitialAdmin{User: "admin", Password: auth.RandomToken(18)}
	user, err := authn.CreateUser(ctx, admin.User, admin.Password, auth.RoleAdmin)
	if err != nil {
		return fmt.Errorf("create initial admin: %w", err)
	}
	// An admin whose credentials were not written could never sign in,
	// and the next start, finding an account, would make no other: it
	// goes, so that the next start makes the first admin afresh.
	defer func() {
		if err != nil {
			err = errors.Join(err, b.store.DeleteUser(context.WithoutCancel(ctx), user.ID))
		}
	}()
	key, apiKey, err := authn.CreateAPIKey(ctx, user, "initial admin key", auth.AllScopes, time.Time{})
	if err != nil {
		return fmt.Errorf("create initial API key: %w", err)
	}
	admin.APIKey = apiKey
	b.cfg.Logger.InfoContext(ctx, "first start: admin account and API key created", "user", user.Username, "key", key.ID)
	data, _ := json.MarshalIndent(admin, "", "  ")
	if err := os.WriteFile(b.InitialAdminPath(), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", InitialAdminFile, err)
	}
	b.newAdmin = true
	return nil
}

// CreateUser adds an account with role technician, supervisor or admin.
func (b *Broker) CreateUser(ctx context.Context, username, password, role string) error {
	switch role {
	case auth.RoleTechnician, auth.RoleSupervisor, auth.RoleAdmin:
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	_, err := b.auth.CreateUser(ctx, username, password, role)
	return err
}

// URL is the console's address.
func (b *Broker) URL() string { return b.url }

// CAFile is the development CA that clients pass with -ca; "" when the
// broker serves a certificate of the admin's (clients trust it as is).
func (b *Broker) CAFile() string { return b.caFile }

// usersNeedDevCA reports whether users' computers meet the development
// CA's certificate, so that a host they run by hand needs -ca. Behind a
// reverse proxy (-public-url) they meet the proxy's certificate instead.
func (b *Broker) usersNeedDevCA() bool { return b.caFile != "" && b.cfg.PublicURL == "" }

// InitialAdminPath is where the first admin's credentials are written.
func (b *Broker) InitialAdminPath() string { return filepath.Join(b.cfg.DataDir, InitialAdminFile) }

// RecordingWarning is what the terminal should be told at start about
// recordings this broker cannot read, or "".
func (b *Broker) RecordingWarning() string { return b.recordingWarning }

// ReloadCertificate reads the TLS certificate files again now.
func (b *Broker) ReloadCertificate() { b.certs.reload() }

// CreatedAdmin reports whether this start created the first admin.
func (b *Broker) CreatedAdmin() bool { return b.newAdmin }

// Run serves until ctx is cancelled, then shuts down: live sessions end,
// connections close.
func (b *Broker) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- b.srv.ServeTLS(b.port.https, "", "") }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.hub.Close()
		err = b.srv.Shutdown(shutdownCtx)
		if errors.Is(err, context.DeadlineExceeded) {
			// A download still under way (a recording, the host on a slow
			// link) is cut: the broker stops all the same, as asked.
			b.cfg.Logger.Warn("downloads still under way after 5 s were cut off")
			err = b.srv.Close()
		}
		<-errc
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, b.close())
}

func (b *Broker) close() error {
	var errs []error
	if b.stop != nil {
		b.stop()
		b.wg.Wait()
	}
	if b.hub != nil {
		errs = append(errs, b.hub.Close())
	}
	if b.webhooks != nil { // after the hub, whose last session.ended it stores
		errs = append(errs, b.webhooks.Close())
	}
	if b.port != nil {
		b.port.Close()
	}
	if b.rtcAPI != nil {
		errs = append(errs, b.rtcAPI.Close())
	}
	if b.store != nil {
		errs = append(errs, b.store.Close())
	}
	if b.lock != nil {
		b.lock.Close()
	}
	if b.recordingsLock != nil {
		b.recordingsLock.Close()
	}
	return errors.Join(errs...)
}

// securityHeaders sets the headers every response needs.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// 'wasm-unsafe-eval' lets the recording player's terminal emulator
		// (WebAssembly) compile; it allows no JavaScript eval. Inline
		// styles are allowed because the console's terminal (xterm.js) sizes
		// and colours its cells with style elements it writes at run time;
		// scripts stay limited to our own files.
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Strict-Transport-Security", "max-age=31536000")
		h.Set("X-Frame-Options", "DENY")
		// A page that opened the console keeps no handle on it (to steer
		// its route, or learn when it navigates).
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// privateDataDir makes the data directory usable by the broker's account
// alone: it holds the database with password hashes and secrets, and a
// directory made by hand or by an older broker may be open to every user
// of the machine (MkdirAll leaves an existing directory as it is).
func privateDataDir(dir string, log *slog.Logger) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	was := fi.Mode().Perm()
	if was&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(dir, was&^0o077); err != nil {
		return fmt.Errorf("the data directory %s can be opened by other users of this machine (mode %04o) and the broker could not change that (%w): make it mode 0700 and owned by the broker's account", dir, was, err)
	}
	log.Warn("the data directory could be opened by other users of this machine; it is now private to the broker's account",
		"dir", dir, "was", fmt.Sprintf("%04o", was), "now", fmt.Sprintf("%04o", was&^0o077))
	return nil
}
