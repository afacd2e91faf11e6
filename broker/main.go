// Command broker runs the Tether broker: the web console, the REST API,
// signaling for hosts and viewers, and the media relay.
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/tether-support/tether/broker/record"
	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/rtc"
)

// verify runs "broker verify [-key FILE] ARCHIVE": exit 0 when the archive
// is intact and signed by the trusted key, 1 when it is not intact, 2 when
// it cannot be checked (no key to trust is one such case).
func verify(args []string) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	keyFile := fs.String("key", "", "public key to trust (PEM from GET /api/v1/recordings/public-key, or "+record.PublicKeyFile+" in the data directory)")
	data := fs.String("data", "data", "data directory whose public key to trust when -key is not given")
	encFile := fs.String("encryption-key", "", "the archives' encryption key file, to check the event chain of an encrypted archive")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: broker verify [-key FILE] [-data DIR] [-encryption-key FILE] ARCHIVE\n\nChecks a session archive (its directory, or the zip the console downloads):\nthe manifest's signature, the SHA-256 of every part and the chain of events.jsonl.")
		fs.PrintDefaults()
	}
	args, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(args) != 1 {
		fs.Usage()
		fmt.Fprintf(os.Stderr, "broker verify: give one archive to check (its directory or the downloaded zip), not %d\n", len(args))
		return 2
	}
	archive := args[0]
	var trusted []byte
	path := *keyFile
	if path == "" {
		path = filepath.Join(*data, record.PublicKeyFile)
	}
	pem, err := os.ReadFile(path)
	switch {
	case err == nil:
		trusted = pem
	case *keyFile != "":
		fmt.Fprintln(os.Stderr, "broker verify:", err)
		return 2
	}
	var key ed25519.PublicKey
	if trusted != nil {
		if key, err = record.ParsePublicKey(trusted); err != nil {
			fmt.Fprintf(os.Stderr, "broker verify: %s: %v\n", path, err)
			return 2
		}
	}
	var encKey []byte
	if *encFile != "" {
		if encKey, err = record.LoadEncryptionKey(*encFile); err != nil {
			fmt.Fprintln(os.Stderr, "broker verify:", err)
			return 2
		}
	}
	report, err := record.VerifyPath(archive, key, encKey)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker verify:", err)
		return 2
	}
	record.WriteReport(os.Stdout, archive, report)
	if !report.OK() {
		return 1
	}
	if key == nil {
		// Whoever rewrites an archive can sign it with a key of their own
		// and name that key in the manifest.
		fmt.Fprintf(os.Stderr, "broker verify: cannot tell who signed it: no key to trust at %s; pass -key with the broker's public key (GET /api/v1/recordings/public-key)\n", path)
		return 2
	}
	return 0
}

// decrypt runs "broker decrypt -encryption-key FILE ARCHIVE OUTPUT": exit 0
// when the readable copy is written, 1 when the archive is not intact, 2
// when it cannot be decrypted (no key or the wrong one, an archive that is
// not encrypted, an OUTPUT that exists). Nothing is written unless 0.
func decrypt(args []string) int {
	fs := flag.NewFlagSet("decrypt", flag.ContinueOnError)
	encFile := fs.String("encryption-key", "", "the archives' encryption key file (the broker's -recording-encryption-key)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: broker decrypt -encryption-key FILE ARCHIVE OUTPUT\n\nWrites a readable copy of an archive encrypted at rest (its directory, or the zip the console downloads):\na zip when OUTPUT ends in .zip, else a directory whose video-*.webm segments a media player opens.\nbroker verify checks the copy. An existing OUTPUT is never overwritten.")
		fs.PrintDefaults()
	}
	args, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(args) != 2 {
		fs.Usage()
		fmt.Fprintf(os.Stderr, "broker decrypt: give the archive and where to write its readable copy (ARCHIVE OUTPUT), not %d arguments\n", len(args))
		return 2
	}
	if *encFile == "" {
		fmt.Fprintln(os.Stderr, "broker decrypt: give the key file the archive was encrypted with: -encryption-key FILE")
		return 2
	}
	key, err := record.LoadEncryptionKey(*encFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker decrypt:", err)
		return 2
	}
	archive, output := args[0], args[1]
	report, err := record.Decrypt(archive, output, key)
	switch {
	case errors.Is(err, record.ErrNotIntact):
		for _, p := range report.Problems {
			fmt.Printf("FAILED    %s\n", p)
		}
		fmt.Fprintf(os.Stderr, "broker decrypt: %s is not intact, so no copy was written: keep it as it is, and download the archive again from the broker\n", archive)
		return 1
	case errors.Is(err, record.ErrOutputExists):
		fmt.Fprintln(os.Stderr, "broker decrypt:", err)
		return 2
	case err != nil:
		fmt.Fprintf(os.Stderr, "broker decrypt: %s: %v\n", archive, err)
		return 2
	}
	for _, p := range report.Warnings {
		fmt.Printf("warning   %s\n", p)
	}
	fmt.Printf("decrypted %s to %s: %d parts; check it with broker verify %s\n", archive, output, report.PartsOK, output)
	return 0
}

// resetAccount runs "broker reset-account [-data DIR] USERNAME": exit 0
// with the account's new password printed, 1 when the account could not be
// reset, 2 on a usage error.
func resetAccount(args []string) int {
	fs := flag.NewFlagSet("reset-account", flag.ContinueOnError)
	data := fs.String("data", "data", "the broker's data directory")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: broker reset-account [-data DIR] USERNAME\n\nGives an account a new password, turns its two-factor authentication off and ends its logins,\nas an admin's reset in the console does: the way back in for an admin who forgot the password\nor lost the authenticator. Stop the broker first.")
		fs.PrintDefaults()
	}
	args, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(args) != 1 {
		fs.Usage()
		fmt.Fprintf(os.Stderr, "broker reset-account: give one username, not %d\n", len(args))
		return 2
	}
	password, err := server.ResetAccount(context.Background(), *data, args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker reset-account:", err)
		return 1
	}
	fmt.Printf("New password for %s: %s\nTwo-factor authentication is off and every login of the account has ended. Sign in and change the password.\n", args[0], password)
	return 0
}

// parseArgs parses the flags wherever they stand and returns the other
// arguments: "broker verify ARCHIVE -key FILE" is as natural to type as
// the flags first.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return rest, nil
		}
		rest, args = append(rest, args[0]), args[1:]
	}
}

// version is the broker's module version and the commit it was built
// from, so an operator can tell which build runs and a bug report can
// name it.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "development build"
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", with uncommitted changes"
			}
		}
	}
	if revision != "" {
		v += " (commit " + revision + modified + ")"
	}
	return v
}

// A duration flag's sensible range. The Config reads zero as "the
// default", so a flag given as 0 (or anything below what a real deployment
// needs, or negative) is refused here rather than run with a surprise.
var durationRanges = []struct {
	flag     string
	value    func(server.Config) time.Duration
	min, max time.Duration
	says     string
}{
	{"code-ttl", func(c server.Config) time.Duration { return c.CodeTTL }, time.Minute, 24 * time.Hour,
		"a support code must stay valid long enough to be read out and typed in: give 1m to 24h, e.g. 10m"},
	{"consent-timeout", func(c server.Config) time.Duration { return c.ConsentTimeout }, 10 * time.Second, time.Hour,
		"the user needs time to read a request before answering: give 10s to 1h, e.g. 1m"},
	{"viewer-grace", func(c server.Config) time.Duration { return c.ViewerGrace }, 10 * time.Second, 24 * time.Hour,
		"a technician needs time to reload the console or run the next viewer command: give 10s to 24h, e.g. 2m"},
	{"login-ttl", func(c server.Config) time.Duration { return c.LoginTTL }, 5 * time.Minute, 30 * 24 * time.Hour,
		"a console login must last long enough to work in: give 5m to 720h (30 days), e.g. 12h"},
	{"login-idle", func(c server.Config) time.Duration { return c.LoginIdle }, time.Minute, 30 * 24 * time.Hour,
		"a console login must survive a minute without clicks: give 1m to 720h (30 days), e.g. 30m"},
}

// checkFlags refuses values no deployment means: a code that is expired
// when it is made, a login that ends before the page loads.
func checkFlags(cfg server.Config) error {
	if cfg.UDPPort < 1 || cfg.UDPPort > 65535 {
		return fmt.Errorf("-udp %d is out of range: give a UDP port from 1 to 65535, e.g. 8443", cfg.UDPPort)
	}
	for _, r := range durationRanges {
		if v := r.value(cfg); v < r.min || v > r.max {
			return fmt.Errorf("-%s %v is out of range: %s", r.flag, v, r.says)
		}
	}
	// Flags that would do nothing are a mistake the operator should hear of.
	if rec := cfg.Recording; rec.Disabled {
		for _, f := range []struct {
			given bool
			flag  string
		}{{rec.Dir != "", "-recordings"}, {rec.RetentionDays != 0, "-retention-days"}, {rec.ShellInput, "-record-shell-input"}, {rec.EncryptionKeyFile != "", "-recording-encryption-key"}} {
			if f.given {
				return fmt.Errorf("%s is given with -no-record, which records nothing: leave one of them out", f.flag)
			}
		}
	}
	if cfg.HostBinary != "" {
		if st, err := os.Stat(cfg.HostBinary); err != nil || st.IsDir() {
			return fmt.Errorf("-host-binary %s: there is no host program there to offer on join pages", cfg.HostBinary)
		}
	}
	return nil
}

func main() {
	rtc.TuneGC()
	if len(os.Args) > 1 && os.Args[1] == "verify" {
		os.Exit(verify(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "decrypt" {
		os.Exit(decrypt(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "reset-account" {
		os.Exit(resetAccount(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("broker", version())
		return
	}
	var cfg server.Config
	var verbose, showVersion bool
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), `usage: broker [flags]
       broker verify [-key FILE] [-data DIR] [-encryption-key FILE] ARCHIVE
       broker decrypt -encryption-key FILE ARCHIVE OUTPUT
       broker reset-account [-data DIR] USERNAME
       broker version

Runs the Tether broker: the web console, the API, signaling and the media relay.
broker verify checks a session archive offline; broker decrypt writes a readable
copy of an archive encrypted at rest; broker reset-account gives an account a new
password and turns its two-factor authentication off, for an admin locked out
(broker verify -h, broker decrypt -h and broker reset-account -h say more).

flags:`)
		flag.PrintDefaults()
	}
	flag.StringVar(&cfg.Addr, "addr", ":8443", "HTTPS and WSS listen address")
	flag.StringVar(&cfg.DataDir, "data", "data", "data directory: database, certificates, recordings")
	flag.IntVar(&cfg.UDPPort, "udp", 8443, "UDP port for all WebRTC media")
	flag.StringVar(&cfg.PublicAddr, "public-addr", "", "host name or IP that hosts and browsers reach the broker by (default localhost)")
	flag.DurationVar(&cfg.CodeTTL, "code-ttl", 10*time.Minute, "how long a support code stays valid")
	flag.DurationVar(&cfg.ConsentTimeout, "consent-timeout", time.Minute, "how long the user has to answer a request; no answer is no")
	flag.DurationVar(&cfg.ViewerGrace, "viewer-grace", 2*time.Minute, "how long a session the user joined waits for its technicians to come back (between viewer commands, after a reload) before it ends")
	flag.StringVar(&cfg.Organisation, "org", "", "organisation shown to users next to technicians' names, e.g. \"Acme IT\"")
	flag.DurationVar(&cfg.LoginTTL, "login-ttl", 12*time.Hour, "longest a console login lasts")
	flag.DurationVar(&cfg.LoginIdle, "login-idle", 30*time.Minute, "a console login unused for this long ends")
	flag.StringVar(&cfg.TLSCertFile, "tls-cert", "", "certificate chain (PEM) to serve instead of the development CA's, e.g. from Let's Encrypt; read again when it changes")
	flag.StringVar(&cfg.TLSKeyFile, "tls-key", "", "private key (PEM) of -tls-cert")
	var proxies string
	flag.StringVar(&proxies, "trusted-proxy", "", "reverse proxies in front of the broker (IP addresses or prefixes, comma-separated): for their requests the client is who X-Forwarded-For names")
	flag.StringVar(&cfg.PublicURL, "public-url", "", "https:// address users reach the broker by, when a reverse proxy serves it (e.g. https://support.example.com); default https://PUBLIC-ADDR:PORT")
	flag.StringVar(&cfg.HostBinary, "host-binary", "", "Linux host program offered on join pages (default: host next to the broker)")
	flag.BoolVar(&cfg.Recording.Disabled, "no-record", false, "do not record sessions (by default every session is recorded: one whose recording cannot start does not start, and one whose recording fails is ended)")
	flag.StringVar(&cfg.Recording.Dir, "recordings", "", "directory for session archives (default: recordings in the data directory)")
	flag.IntVar(&cfg.Recording.RetentionDays, "retention-days", 0, "delete archives this many days after they were sealed; 0 keeps them")
	flag.BoolVar(&cfg.Recording.ShellInput, "record-shell-input", false, "record what technicians type in shells, not only the output")
	flag.StringVar(&cfg.Recording.EncryptionKeyFile, "recording-encryption-key", "", "file with a 32-byte key (hex or base64, mode 0600) that encrypts archives at rest")
	flag.BoolVar(&verbose, "v", false, "verbose logging")
	flag.BoolVar(&showVersion, "version", false, "print the broker's version and exit")
	flag.Parse()
	if showVersion {
		fmt.Println("broker", version())
		return
	}
	if flag.NArg() > 0 {
		// A mistyped command must not start a broker on the default data
		// directory.
		fmt.Fprintf(os.Stderr, "broker: unknown command %q: the broker takes flags only (broker -h), and its commands are verify, decrypt, reset-account and version\n", flag.Arg(0))
		os.Exit(2)
	}

	if err := checkFlags(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(2)
	}
	var err error
	if cfg.TrustedProxies, err = server.ParseProxies(proxies); err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(2)
	}

	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Version = version()
	cfg.Logger.Info("broker starting", "version", cfg.Version)
	b, err := server.New(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(1)
	}
	// SIGHUP reads the certificate again at once, as daemons do (a renewal
	// hook sends it); it found its own way within a minute anyway. It no
	// longer kills the broker without the chance to end sessions cleanly.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			b.ReloadCertificate()
		}
	}()
	if b.CreatedAdmin() {
		fmt.Printf("First start: admin login and API key written to %s (readable by you only).\n", b.InitialAdminPath())
	} else if _, err := os.Stat(b.InitialAdminPath()); err == nil {
		// A first start that stopped early (a port in use) wrote it too.
		fmt.Printf("The first admin login and API key are in %s: sign in, change the password, then delete the file.\n", b.InitialAdminPath())
	}
	if b.CAFile() != "" {
		fmt.Printf("Hosts and viewers trust the development CA with -ca %s\n", b.CAFile())
	}
	if w := b.RecordingWarning(); w != "" {
		fmt.Println("Warning: " + w)
	}
	fmt.Printf("Console: %s/\n", b.URL())
	if err := b.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(1)
	}
	cfg.Logger.Info("broker stopped", "reason", context.Cause(ctx))
}
