// Command broker runs the Tether broker: the web console, the REST API,
// signaling for hosts and viewers, and the media relay.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tether-support/tether/broker/server"
)

func main() {
	var cfg server.Config
	var verbose bool
	flag.StringVar(&cfg.Addr, "addr", ":8443", "HTTPS and WSS listen address")
	flag.StringVar(&cfg.DataDir, "data", "data", "data directory: database, certificates, recordings")
	flag.IntVar(&cfg.UDPPort, "udp", 8443, "UDP port for all WebRTC media")
	flag.StringVar(&cfg.PublicAddr, "public-addr", "", "host name or IP that hosts and browsers reach the broker by (default localhost)")
	flag.DurationVar(&cfg.CodeTTL, "code-ttl", 10*time.Minute, "how long a support code stays valid")
	flag.DurationVar(&cfg.ConsentTimeout, "consent-timeout", time.Minute, "how long the user has to answer a request; no answer is no")
	flag.StringVar(&cfg.Organisation, "org", "", "organisation shown to users next to technicians' names, e.g. \"Acme IT\"")
	flag.DurationVar(&cfg.LoginTTL, "login-ttl", 12*time.Hour, "longest a console login lasts")
	flag.DurationVar(&cfg.LoginIdle, "login-idle", 30*time.Minute, "a console login unused for this long ends")
	flag.StringVar(&cfg.HostBinary, "host-binary", "", "Linux host program offered on join pages (default: host next to the broker)")
	flag.BoolVar(&verbose, "v", false, "verbose logging")
	flag.Parse()

	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := server.New(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(1)
	}
	if b.CreatedAdmin() {
		fmt.Printf("First start: admin login and API key written to %s (readable by you only).\n", b.InitialAdminPath())
	}
	fmt.Printf("Hosts and viewers trust the development CA with -ca %s\n", b.CAFile())
	fmt.Printf("Console: %s/\n", b.URL())
	if err := b.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(1)
	}
}
