// Command host shares this computer's screen with a technician for one
// support session, joined with the one-time code the technician gave, or,
// started without one, with a code the broker issues for the user to read
// out to the technician.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"golang.org/x/term"

	"github.com/tether-support/tether/host/consent"
	"github.com/tether-support/tether/host/files"
	"github.com/tether-support/tether/host/session"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/launch"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
)

func main() {
	rtc.TuneGC()
	cfg := session.Config{}
	var broker string
	maxFileSize := byteSize(4 << 30)
	flag.StringVar(&broker, "broker", "", "the support server's `ADDRESS` your technician gave you, e.g. https://support.example.com:8443 (or TETHER_BROKER)")
	flag.StringVar(&cfg.CAFile, "ca", "", "the certificate `FILE` your technician gave you, if they did (default: this computer's own)")
	flag.IntVar(&cfg.Display, "display", 0, "which monitor to share: 0 is the main one, 1 the next, and so on")
	flag.IntVar(&cfg.FPS, "fps", 30, "pictures of the screen sent each second, at most 60")
	flag.StringVar(&cfg.FilesRoot, "files-root", "", "folder technicians may browse and fetch files from, if you allow it (default: your home folder)")
	flag.StringVar(&cfg.FilesInbox, "files-inbox", "", "folder where files sent to you land (default: ~/Downloads/Tether)")
	flag.Var(&maxFileSize, "max-file-size", "largest `SIZE` of a file a transfer may carry, e.g. 500MiB")
	flag.BoolVar(&verbose, "v", false, "show what the host does, and the details of any error, for whoever helps you")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `Usage: host -broker ADDRESS [-ca FILE] CODE

Lets the technician who gave you CODE, a 9-digit number, see this screen,
and more if you allow it: nothing is shared until you say yes, and Ctrl+C
stops everything at any time. Your technician gives you the whole command
(or a join link, which holds the address and the code): type or paste it
as it is. Without a code, the support server gives you one to read out to
your technician.

Options:
`)
		flag.PrintDefaults()
	}
	args := parseArgs(flag.CommandLine, os.Args[1:])
	cfg.MaxFileSize = int64(maxFileSize)
	caFile, monitor = cfg.CAFile, cfg.Display
	if elevated() {
		fail(errElevated)
	}
	if cfg.FPS < 1 || cfg.FPS > 60 {
		fail(fmt.Errorf("-fps %d: give 1 to 60 frames per second", cfg.FPS))
	}

	// The terminal is the user's: it shows what they need to read, and
	// the log only what went wrong, unless they ask for more (-v).
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg.OnTransfer, cfg.OnShells = showTransfer, showShells
	// Ask on the terminal when there is one (the user started us there),
	// else with a desktop dialog. Never without asking.
	var terminal *consent.Terminal
	if term.IsTerminal(int(os.Stdin.Fd())) {
		terminal = consent.NewTerminal(os.Stdin, os.Stdout)
		cfg.Prompter, cfg.Show, cfg.Commands = terminal, terminal.Show, terminal.Serve
	} else if d, err := consent.NewDialog(); err == nil && os.Getenv("DISPLAY") != "" {
		dialog = d
		cfg.Prompter, cfg.Show, cfg.Commands = d, d.Show, d.Serve
		// No one reads standard output here: the sharing window says what
		// is under way too.
		cfg.OnTransfer = func(p files.Progress) {
			showTransfer(p)
			d.SetTransfer(p.Name, transferVerb(p.Direction), !p.Finished)
		}
		cfg.OnShells = func(open int) {
			showShells(open)
			d.SetShells(open)
		}
		cfg.OnRemotePress = d.RemotePress
	} else if err != nil {
		fail(err)
	} else {
		// zenity is there, but no desktop to show it on.
		fail(errNoDesktop)
	}

	// The link the user got, pasted where the code goes, names the code
	// and the broker.
	var linked string
	if len(args) == 1 {
		if base, code, ok := joinLink(args[0]); ok {
			args[0], linked = code, base
		}
	}
	// A host downloaded from a join page carries the broker, the code and
	// the certificate it needs, whatever the user types after it (the
	// code again, the link): it can be run again with a new code.
	var joined launch.Settings
	if exe, err := os.Executable(); err == nil {
		if joined, err = launch.Read(exe); err != nil && !errors.Is(err, launch.ErrNone) {
			fail(err)
		}
	}
	// Where to connect: the address given, else the link's, else the one
	// the download carries, else TETHER_BROKER. A setting left in the
	// environment does not send a link's code to another server, and an
	// address given that is not the link's is a mistake to say.
	given := broker != ""
	for _, b := range []string{linked, joined.Broker, os.Getenv("TETHER_BROKER")} {
		if broker == "" {
			broker = b
		}
	}
	var err error
	if cfg.Broker, err = dial.BrokerURL(broker); err != nil {
		fail(fmt.Errorf("%w (pass -broker)", err))
	}
	if linked != "" && given {
		if l, err := dial.BrokerURL(linked); err == nil && l.Host != cfg.Broker.Host {
			fail(fmt.Errorf("the join link is for the support server at %s, and -broker names %s: run the command exactly as your technician gave it", l.Host, cfg.Broker.Host))
		}
	}
	if b, err := dial.BrokerURL(joined.Broker); err == nil && b.Host == cfg.Broker.Host && cfg.CAFile == "" {
		cfg.CAPEM = []byte(joined.CAPEM)
	}
	serverHost = cfg.Broker.Host
	switch {
	case len(args) == 1:
		cfg.Code = args[0]
	case len(args) > 1 && allDigits(args):
		// The code as it is shown and read out, "482 193 075", is three
		// arguments without quotes.
		cfg.Code = strings.Join(args, "")
	case len(args) > 1:
		fail(fmt.Errorf("%q is not a support code: it is nine digits, like 482 193 075 (a letter O or l for 0 or 1 is a common slip)", strings.Join(args, " ")))
	case joined.Code != "":
		cfg.Code = joined.Code
	default:
		cfg.NewCode = true
		cfg.OnCode = func(code string, expires time.Time) {
			text := fmt.Sprintf("Your support code: %s\nRead it out to your technician. It is valid until %s.",
				groupDigits(code), expires.Local().Format("15:04"))
			fmt.Println(text)
			if dialog != nil { // up until a technician enters the code
				go func() {
					if dialog.ShowCode(codeShown, "Tether: your support code", text) {
						stopWaiting()
					}
				}()
			}
		}
	}
	// Spaces of any kind (a chat program's non-breaking ones, a tab) and
	// the separators people write digits with are not part of the code.
	cfg.Code = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || strings.ContainsRune("-.\u2010\u2011\u2012\u2013\u2014", r) {
			return -1
		}
		return r
	}, cfg.Code)
	// Checked here, before the broker counts a try against the user's
	// network: a code is nine digits.
	if !cfg.NewCode && (len(cfg.Code) != 9 || !allDigits([]string{cfg.Code})) {
		fail(fmt.Errorf("\"%s\" is not a support code: it is nine digits, like 482 193 075 (a letter O or l for 0 or 1 is a common slip)", protocol.Printable(cfg.Code)))
	}
	consent.Descriptions[protocol.PermFiles] = filesWords(cfg.FilesRoot, cfg.FilesInbox)
	cfg.OnJoined = func(string) {
		hideCode()
		fmt.Println("Connected to the support server. Nothing is shared until you allow it. Press Ctrl+C to stop.")
	}
	if terminal != nil {
		// Ctrl+Z would stop the host with the technician's commands
		// running on, and the user's own commands no longer reaching it.
		go refuseSuspend()
	}
	share, alone := startSharing(os.Getenv("DISPLAY"))
	if !alone {
		fmt.Println("Another Tether session is already sharing this screen: ending this one does not end it.")
	}

	ctx, stop := signal.NotifyContext(waiting, stopSignals()...)
	defer stop()
	reason, err := session.Run(ctx, cfg)
	hideCode()
	if share.stop() {
		// What is said of this session is not said of the computer.
		nothingShared = "This session shares nothing any more; another Tether session still shares this screen."
		errConnectionLost = errors.New("the connection to the support server was lost, so this session is over and shares nothing any more (another Tether session still shares this screen). Check this computer's network connection, then ask your technician for a new code")
	}
	if err != nil && ctx.Err() != nil {
		// Ctrl+C (or the terminal closed) before the session began.
		cfg.Logger.Info("stopped while connecting", "err", err)
		fmt.Println("Stopped before the session began: nothing was shared.")
		os.Exit(130)
	}
	if errors.Is(err, session.ErrLost) {
		// What broke ("websocket: close 1006") is for whoever helps the
		// user, in the log with -v; the user needs to know where they
		// stand, in words they can act on.
		cfg.Logger.Info("the connection to the broker was lost", "err", err)
		err = errConnectionLost
	}
	if err != nil {
		fail(err)
	}
	fmt.Println("Session ended:", reason)
	fmt.Println(nothingShared)
	if terminal != nil {
		terminal.SetTitle("Tether: session ended")
	}
	if dialog != nil {
		dialog.Tell(context.Background(), "Tether: session ended", "The support session ended: "+reason+"\n"+nothingShared, false)
	}
}

// stopSignals are the signals that end the session as the user's "end"
// does: the technician is told, and the terminals opened on this computer
// are closed with everything they started. Closing the terminal window the
// host runs in sends SIGHUP, which would otherwise kill the host outright
// and leave the technician's background commands running. A host started
// with nohup is meant to outlive its terminal, and keeps doing so.
func stopSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT} // Ctrl+\ as Ctrl+C
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// refuseSuspend answers Ctrl+Z: the host goes on, and says how to pause
// or end instead.
func refuseSuspend() {
	tstp := make(chan os.Signal, 1)
	signal.Notify(tstp, syscall.SIGTSTP)
	for range tstp {
		fmt.Println("\nCtrl+Z does not pause sharing: type \"pause\" or \"end\", or press Ctrl+C.")
	}
}

// nothingShared is what the user reads once the session ended, however
// it did.
var nothingShared = "Nothing on this computer is shared any more."

// errConnectionLost is what the user reads when the network dropped the
// session: whether anything is still shared, and what to do.
var errConnectionLost = errors.New("the connection to the support server was lost, so the session is over and nothing is shared any more. Check this computer's network connection, then ask your technician for a new code")

// errElevated is why the host does not run as root for another user: the
// technician's shell and file access have the rights of the account the
// host runs as, and must never have more than the user's own.
var errElevated = errors.New("run the host as yourself, without sudo or su: as the administrator, a technician's shell and file access would have full rights over this computer")

// elevated reports whether the host runs as root on behalf of another
// account (sudo, pkexec, doas, su). Someone signed in as root is sharing
// their own account.
func elevated() bool {
	if os.Geteuid() != 0 {
		return false
	}
	for _, v := range []string{"SUDO_UID", "PKEXEC_UID", "DOAS_USER"} {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return switchedFromDesktop()
}

// errNoDesktop is why the host cannot ask without a terminal when zenity
// is installed: there is no display for its window (nor to share).
var errNoDesktop = errors.New("no way to ask for consent: there is no terminal, and no desktop to show a question on (DISPLAY is not set); run the host from a terminal in the user's desktop session")

// dialog is the desktop front end when the host runs without a terminal:
// what the user must read goes to a window too.
var dialog *consent.Dialog

// codeShown lasts while the support code's window is up.
var codeShown, hideCode = context.WithCancel(context.Background())

// waiting ends when the user stops waiting for a technician from the code's
// window, as Ctrl+C does on a terminal.
var waiting, stopWaiting = context.WithCancel(context.Background())

// groupDigits writes 482193075 as 482 193 075, easier to read out.
func groupDigits(code string) string {
	var b strings.Builder
	for i, r := range code {
		if i > 0 && i%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// showShells tells the user when terminals open and close on their
// computer.
func showShells(open int) {
	switch open {
	case 0:
		fmt.Println("No terminal is open on this computer now.")
	case 1:
		fmt.Println("A terminal is open on this computer: the technician can run commands as you.")
	default:
		fmt.Printf("%d terminals are open on this computer: the technician can run commands as you.\n", open)
	}
}

// transferVerb says what the user's computer does in a transfer.
func transferVerb(direction string) string {
	return map[string]string{"upload": "Receiving", "download": "Sending"}[direction]
}

// showTransfer draws a file transfer's progress bar on standard output,
// one line per step of ten percent, so that it reads well in a log too.
func showTransfer(p files.Progress) {
	verb := transferVerb(p.Direction)
	if p.Source != "" { // which of the user's files leaves, not only its name
		abs, err := filepath.Abs(p.Source)
		if err != nil {
			abs = p.Source
		}
		p.Name = protocol.Printable(files.HomeRelative(abs))
	}
	switch {
	case p.Err != nil:
		// The reason may quote the path the technician asked for.
		fmt.Printf("%s %s: stopped: %s\n", verb, p.Name, protocol.Printable(p.Err.Error()))
	case p.Finished && p.Path != "":
		fmt.Printf("%s %s: [%s] done, %s, saved as %s\n", verb, p.Name, strings.Repeat("#", 20), humanSize(p.Total), files.HomeRelative(p.Path))
	case p.Finished:
		fmt.Printf("%s %s: [%s] done, %s\n", verb, p.Name, strings.Repeat("#", 20), humanSize(p.Total))
	default:
		pct := int64(100)
		if p.Total > 0 {
			pct = p.Done * 100 / p.Total
		}
		transferMu.Lock()
		defer transferMu.Unlock()
		step := pct / 10
		if last, ok := transferSteps[p.Name]; ok && last == step && p.Done != 0 {
			return
		}
		transferSteps[p.Name] = step
		bar := strings.Repeat("#", int(pct/5)) + strings.Repeat(".", 20-int(pct/5))
		fmt.Printf("%s %s: [%s] %3d%% of %s\n", verb, p.Name, bar, pct, humanSize(p.Total))
	}
}

var (
	transferMu    sync.Mutex
	transferSteps = map[string]int64{}
)

// filesWords says what the files permission opens, in the question the
// user answers: "send and fetch files" alone does not tell them that a
// technician may take any file in their home folder (or the -files-root
// folder), nor where files sent to them land.
func filesWords(root, inbox string) string {
	where := "your home folder"
	if root != "" {
		where = folderWords(root)
	}
	into := "~/Downloads/Tether"
	if inbox != "" {
		into = folderWords(inbox)
	}
	return fmt.Sprintf("fetch any file in %s, and send you files (saved in %s)", where, into)
}

// folderWords names a folder as the user knows it: "your home folder",
// ~/Documents, or its full path elsewhere.
func folderWords(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if home, err := os.UserHomeDir(); err == nil && filepath.Clean(home) == dir {
		return "your home folder"
	}
	return files.HomeRelative(dir)
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// verbose is -v: the log says what the host does, and errors say what
// broke in the program's words too.
var verbose bool

// fail tells the user why the host cannot go on, and exits.
func fail(err error) {
	msg := protocol.Printable(forUser(err)) // it may carry the broker's words
	if verbose && msg != sentence(err.Error()) {
		fmt.Fprintln(os.Stderr, "details:", protocol.Printable(err.Error()))
	}
	fmt.Fprintln(os.Stderr, "Tether:", msg)
	if dialog != nil {
		dialog.Tell(context.Background(), "Tether: the support session could not go on", msg, true)
	}
	os.Exit(1)
}

// parseArgs parses the flags wherever they stand and returns the other
// arguments: "host 482193075 -broker URL" is as natural to type as the
// flags first, and must not lose the broker's address.
func parseArgs(fs *flag.FlagSet, args []string) []string {
	var rest []string
	for {
		fs.Parse(args) // exits with the usage on a bad flag
		args = fs.Args()
		if len(args) == 0 {
			return rest
		}
		rest, args = append(rest, args[0]), args[1:]
	}
}

// joinLink splits a join link, https://support.example.com/join/482193075,
// into the broker's address and the code; ok is false for anything else.
func joinLink(s string) (broker, code string, ok bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", "", false
	}
	base, code, ok := strings.Cut(u.Path, "/join/")
	code = strings.TrimSuffix(code, "/") // as a browser may copy it
	if !ok || code == "" || strings.Contains(code, "/") {
		return "", "", false
	}
	u.Path, u.RawQuery, u.Fragment = base, "", ""
	return u.String(), code, true
}

// allDigits says whether every argument is digits only: groups of a code.
func allDigits(args []string) bool {
	for _, a := range args {
		if a == "" || strings.Trim(a, "0123456789") != "" {
			return false
		}
	}
	return true
}
