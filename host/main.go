// Command host shares this computer's screen with a technician for one
// support session, joined with the one-time code the technician gave.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/tether-support/tether/host/consent"
	"github.com/tether-support/tether/host/session"
	"github.com/tether-support/tether/internal/dial"
)

func main() {
	cfg := session.Config{}
	var broker string
	var verbose bool
	flag.StringVar(&broker, "broker", os.Getenv("TETHER_BROKER"), "broker address, e.g. https://support.example.com:8443 (or TETHER_BROKER)")
	flag.StringVar(&cfg.CAFile, "ca", "", "PEM file of the CA that signed the broker's certificate (default: the system's CAs)")
	flag.IntVar(&cfg.Display, "display", 0, "index of the monitor to share")
	flag.IntVar(&cfg.FPS, "fps", 30, "frames per second to capture (at most 60)")
	flag.BoolVar(&verbose, "v", false, "verbose logging")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: host -broker URL [-ca FILE] [CODE]\n\nShares this screen with the technician who gave you CODE.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	var err error
	if cfg.Broker, err = dial.BrokerURL(broker); err != nil {
		fail(fmt.Errorf("%w (pass -broker)", err))
	}
	switch flag.NArg() {
	case 0:
		cfg.Code = askCode()
	case 1:
		cfg.Code = flag.Arg(0)
	default:
		flag.Usage()
		os.Exit(2)
	}
	cfg.Code = strings.ReplaceAll(strings.ReplaceAll(cfg.Code, " ", ""), "-", "")
	cfg.OnJoined = func(string) {
		fmt.Println("Connected to the broker. Nothing is shared until you allow it. Press Ctrl+C to stop.")
	}

	// Ask on the terminal when there is one (the user started us there),
	// else with a desktop dialog. Never without asking.
	if term.IsTerminal(int(os.Stdin.Fd())) {
		t := consent.NewTerminal(os.Stdin, os.Stdout)
		cfg.Prompter, cfg.Show, cfg.Commands = t, t.Show, t.Serve
	} else if d, err := consent.NewDialog(); err == nil && os.Getenv("DISPLAY") != "" {
		cfg.Prompter, cfg.Commands = d, d.Serve
		cfg.Show = func(status string) { fmt.Println(status) }
	} else {
		fail(consent.ErrNoFrontEnd)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reason, err := session.Run(ctx, cfg)
	if err != nil {
		fail(err)
	}
	fmt.Println("Session ended:", reason)
}

// askCode reads the support code from the terminal.
func askCode() string {
	fmt.Print("Support code from your technician: ")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		fail(fmt.Errorf("no support code given: pass it as an argument or type it when asked"))
	}
	return strings.TrimSpace(line)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "host:", err)
	os.Exit(1)
}
