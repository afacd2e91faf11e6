// Command viewer is the technician's command-line client: log in, create a
// session, watch one, or save the remote screen as a PNG.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
	"github.com/tether-support/tether/viewer/client"
)

const usage = `Usage: viewer [global flags] COMMAND [flags]

Commands:
  login                       log in as a person; the token is saved for later commands
  logout                      end the saved login and forget its token
  create [-ticket ID] [-ask view,control,...]
                              create a support session and print its code and the link for the user
  join -session ID            watch a session until it ends (prints frame counts)
  screenshot -session ID -o out.png
                              save the current remote screen as PNG
  shell -session ID           open a terminal on the user's computer (needs the shell permission)
  push -session ID LOCAL [NAME]
                              send a file to the user's Downloads/Tether folder
  pull -session ID REMOTE [LOCAL]
                              fetch a file from the user's shared folder (resumes an interrupted pull)
  ls -session ID [PATH]       list a folder the user shares
  end -session ID             end a session for everyone

Global flags:
`

func main() {
	rtc.TuneGC()
	global := flag.NewFlagSet("viewer", flag.ExitOnError)
	broker := global.String("broker", os.Getenv("TETHER_BROKER"), "broker address, e.g. https://support.example.com:8443 (or TETHER_BROKER)")
	caFile := global.String("ca", "", "PEM file of the CA that signed the broker's certificate (default: the system's CAs)")
	apiKey := global.String("api-key", "", "API key, visible to other users in the process list: prefer TETHER_API_KEY (default: the token saved by 'viewer login')")
	verbose := global.Bool("v", false, "verbose logging")
	global.Usage = func() {
		fmt.Fprint(global.Output(), usage)
		global.PrintDefaults()
	}
	global.Parse(os.Args[1:])
	if global.NArg() == 0 {
		global.Usage()
		os.Exit(2)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if global.Arg(0) == "logout" {
		// The saved login names its own broker: -broker is not needed.
		fs := flag.NewFlagSet("logout", flag.ExitOnError)
		fs.StringVar(caFile, "ca", *caFile, "PEM file of the CA that signed the broker's certificate")
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), "Usage: viewer logout [-ca FILE]\n\nEnds the saved login on its broker and forgets its token.\n\n")
			fs.PrintDefaults()
		}
		fs.Parse(global.Args()[1:])
		if err := logout(*caFile, logger); err != nil {
			fail(err)
		}
		return
	}
	u, err := dial.BrokerURL(*broker)
	if err != nil {
		fail(fmt.Errorf("%w (pass -broker)", err))
	}
	token := *apiKey
	if token == "" {
		token = os.Getenv("TETHER_API_KEY")
	}
	cmd, args := global.Arg(0), global.Args()[1:]
	if token == "" && cmd != "login" {
		token, _ = loadToken(u.String())
	}
	c, err := client.New(client.Config{Broker: u, CAFile: *caFile, Token: token, Logger: logger})
	if err != nil {
		fail(err)
	}
	// Every signal that ends the command lets it put the terminal back as
	// it was (raw for a shell, no echo at the password prompt).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer stop()

	switch cmd {
	case "login":
		err = login(ctx, c, u.String(), args)
	case "create":
		err = create(ctx, c, args)
	case "join":
		err = join(ctx, c, args)
	case "screenshot":
		err = screenshot(ctx, c, args)
	case "end":
		err = end(ctx, c, args)
	case "shell":
		err = runShell(ctx, c, args)
	case "push":
		err = push(ctx, c, args)
	case "pull":
		err = pull(ctx, c, args)
	case "ls":
		err = list(ctx, c, args)
	default:
		fmt.Fprintf(os.Stderr, "viewer: unknown command %q\n\n", cmd)
		global.Usage()
		os.Exit(2)
	}
	if err != nil && ctx.Err() != nil {
		// Ctrl+C: what it cut short, not how.
		msg := "stopped"
		if cmd == "push" || cmd == "pull" {
			msg += "; run the same command again to carry on where it stopped"
		}
		err = errors.New(msg)
	}
	if (cmd == "push" || cmd == "pull") && errors.Is(err, client.ErrDisconnected) {
		// The session goes on a while without this connection, and the
		// user's computer keeps the part of an upload it received.
		if strings.HasSuffix(err.Error(), ".") {
			err = fmt.Errorf("%w Run the same command again to carry on where it stopped.", err)
		} else {
			err = fmt.Errorf("%w; run the same command again to carry on where it stopped", err)
		}
	}
	if (cmd == "push" || cmd == "pull") && errors.Is(err, client.ErrPaused) {
		// A pause is a moment's break: the user's computer keeps the part
		// of a file it received, and a fetch keeps here what came.
		err = fmt.Errorf("%w; once they resume, run the same command again to carry on where it stopped", err)
	}
	if code := shellExit(0); errors.As(err, &code) && code > 0 && code < 256 {
		fmt.Fprintln(os.Stderr, "viewer:", err)
		os.Exit(int(code))
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "viewer:", printable(err.Error()))
	os.Exit(1)
}

// printable is text from the broker or the user's computer, to print on
// this terminal: its lines without control characters, which could
// otherwise move the cursor, retitle the window or set the clipboard.
func printable(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = protocol.Printable(l)
	}
	return strings.Join(lines, "\n")
}

func tokenPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "tether", "token"), nil
}

// loadToken returns the login token saved for broker, or "": a login is
// never sent to another broker (a mistyped address must not get it).
func loadToken(broker string) (string, error) {
	p, err := tokenPath()
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(p)
	if f := strings.Fields(string(data)); len(f) == 2 && f[0] == broker {
		return f[1], nil
	}
	return "", err
}

// prompt reads an answer with read, or gives up when ctx ends: Ctrl+C
// must end the command at a prompt. A read of standard input cannot be
// interrupted; the process ends with it.
func prompt(ctx context.Context, read func() (string, error)) (string, error) {
	type answer struct {
		s   string
		err error
	}
	got := make(chan answer, 1)
	go func() {
		s, err := read()
		got <- answer{s, err}
	}()
	select {
	case a := <-got:
		return a.s, a.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func login(ctx context.Context, c *client.Client, broker string, args []string) error {
	fs := newFlags("login", "login", "Asks for a username and password, logs in and saves the login token for later commands.")
	fs.Parse(args)
	if fs.NArg() > 0 {
		usageFail(fs, "login takes no arguments: it asks for the username")
	}
	in := bufio.NewReader(os.Stdin)
	readLine := func() (string, error) { return in.ReadString('\n') }
	fmt.Print("Username: ")
	user, err := prompt(ctx, readLine)
	if err != nil {
		return fmt.Errorf("read username: %w", err)
	}
	fmt.Print("Password: ")
	var pass string
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		// Echo is off while the password is typed: put back as it was
		// if Ctrl+C ends the read.
		state, serr := term.GetState(fd)
		pass, err = prompt(ctx, func() (string, error) {
			p, err := term.ReadPassword(fd)
			return string(p), err
		})
		if err != nil && state != nil {
			term.Restore(fd, state)
		}
		if serr != nil && err == nil {
			err = serr
		}
		fmt.Println()
	} else {
		pass, err = prompt(ctx, readLine)
		pass = strings.TrimSpace(pass)
	}
	if err != nil {
		return fmt.Errorf("read password: %w", err)
	}
	user = strings.TrimSpace(user)
	token, err := c.Login(ctx, user, pass, "")
	if apiErr := (*client.APIError)(nil); errors.As(err, &apiErr) && apiErr.Code == "totp_required" {
		fmt.Print("Two-factor code (or a recovery code): ")
		code, rerr := prompt(ctx, readLine)
		if rerr != nil {
			return fmt.Errorf("read two-factor code: %w", rerr)
		}
		token, err = c.Login(ctx, user, pass, strings.TrimSpace(code))
	}
	if err != nil {
		return err
	}
	p, err := tokenPath()
	if err != nil {
		return err
	}
	if err := saveToken(p, broker+" "+token+"\n"); err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	fmt.Println("Logged in; token saved to", p)
	return nil
}

// saveToken writes the login to path, readable by its owner only: a new
// file replaces the old one, whose mode (or its folder's) may have let
// others read it.
func saveToken(path, login string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".token-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a failure; renamed, it is gone
	if _, err := f.WriteString(login); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// logout ends the saved login on its broker and forgets its token. The
// token is kept when the broker could not be told: forgotten, the login
// would stay valid there with no way for its owner to end it.
func logout(caFile string, logger *slog.Logger) error {
	p, err := tokenPath()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("No login is saved; there is nothing to log out of.")
		return nil
	}
	if err != nil {
		return err
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		if err := os.Remove(p); err != nil {
			return err
		}
		fmt.Printf("Removed the saved login token %s (it named no broker).\n", p)
		return nil
	}
	broker, token := f[0], f[1]
	ended := endLogin(broker, token, caFile, logger)
	var apiErr *client.APIError
	switch {
	case errors.As(ended, &apiErr) && apiErr.Status == http.StatusUnauthorized:
		// The broker no longer knows the login (it expired, or ended).
	case errors.Is(ended, dial.ErrUntrusted):
		return fmt.Errorf("%s could not be told to end the login, so it is still saved in %s: %w\nRun 'viewer -ca FILE logout' again, with the broker's CA", broker, p, ended)
	case ended != nil:
		return fmt.Errorf("%s could not be told to end the login, so it is still saved in %s: %w\nRun 'viewer logout' again when the broker can be reached", broker, p, ended)
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	fmt.Printf("Logged out of %s: the broker ended the login, and its token is removed from %s.\n", broker, p)
	return nil
}

// endLogin asks broker to end the login of token.
func endLogin(broker, token, caFile string, logger *slog.Logger) error {
	u, err := dial.BrokerURL(broker)
	if err != nil {
		return err
	}
	c, err := client.New(client.Config{Broker: u, CAFile: caFile, Token: token, Logger: logger})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return c.Logout(ctx)
}

func create(ctx context.Context, c *client.Client, args []string) error {
	fs := newFlags("create", "create [-ticket ID] [-ask view,control,...]", "Creates a support session and prints its code and the link for the user.")
	ticket := fs.String("ticket", "", "ticket reference, e.g. INC-1234")
	ask := fs.String("ask", "", "what to ask the user for, comma-separated: view, control, clipboard, files, shell (default: the broker's)")
	fs.Parse(args)
	if fs.NArg() > 0 {
		usageFail(fs, fmt.Sprintf("create takes no arguments, not %q (a ticket goes with -ticket)", fs.Arg(0)))
	}
	perms := strings.FieldsFunc(*ask, func(r rune) bool { return r == ',' || r == ' ' })
	s, err := c.CreateSession(ctx, *ticket, perms...)
	if err != nil {
		return err
	}
	fmt.Printf("session %s\ncode    %s (valid until %s)\nconsole %s\njoin    %s (send this link to the user: it offers the host with the code filled in)\n",
		s.ID, s.Code, s.CodeExpiresAt.Local().Format(time.Kitchen), s.ConsoleURL, s.JoinURL)
	return nil
}

// newFlags returns the flag set of a command, whose usage is synopsis.
func newFlags(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: viewer [global flags] %s\n\n%s\n\n", synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// usageFail ends a command run with missing or wrong arguments as a flag
// error does: why, the command's usage, and exit code 2.
func usageFail(fs *flag.FlagSet, why string) {
	fmt.Fprintln(fs.Output(), "viewer:", why)
	fs.Usage()
	os.Exit(2)
}

// sessionFlag parses -session and the command's own flags, for a command
// that takes no other arguments.
func sessionFlag(name string, args []string, extra func(*flag.FlagSet)) string {
	id, _ := sessionArgs(name, "", 0, 0, args, extra)
	return id
}

// sessionArgs parses -session and the command's own flags, and returns
// the positional arguments that follow: between least and most of them, as
// more describes them.
func sessionArgs(name, more string, least, most int, args []string, extra func(*flag.FlagSet)) (string, []string) {
	synopsis := name + " -session ID [flags]"
	if more != "" {
		synopsis += " " + more
	}
	fs := newFlags(name, synopsis, commandAbout[name])
	id := fs.String("session", "", "session id")
	if extra != nil {
		extra(fs)
	}
	fs.Parse(args)
	switch {
	case *id == "":
		usageFail(fs, name+": -session is required")
	case fs.NArg() < least:
		usageFail(fs, name+": missing "+more)
	case fs.NArg() > most:
		usageFail(fs, fmt.Sprintf("%s: unexpected argument %q", name, fs.Arg(most)))
	}
	return *id, fs.Args()
}

// commandAbout says what each command that takes -session does.
var commandAbout = map[string]string{
	"join":       "Watches a session until it ends, printing frame counts; Ctrl+C leaves it.",
	"screenshot": "Saves the current remote screen as a PNG file.",
	"shell":      "Opens a terminal on the user's computer (needs the shell permission).",
	"push":       "Sends a file to the user's Downloads/Tether folder, as NAME if given.",
	"pull":       "Fetches a file from the user's shared folder, into LOCAL (a file or a folder) if given.",
	"ls":         "Lists a folder the user shares (default: its top). A PATH starting with - goes after --.",
	"end":        "Ends a session for everyone.",
}

func join(ctx context.Context, c *client.Client, args []string) error {
	id := sessionFlag("join", args, nil)
	j, err := c.Join(ctx, id)
	if err != nil {
		return err
	}
	defer j.Close()
	fmt.Println("Joined", id, "- press Ctrl+C to leave")
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-j.Done():
			if j.Disconnected() {
				return j.Over() // the session goes on without us
			}
			fmt.Println("Session ended:", printable(j.EndReason()))
			return nil
		case <-t.C:
			if h := j.Host(); h != nil {
				fmt.Printf("%s %dx%d  frames received: %d\n", printable(h.Hostname), h.Width, h.Height, j.Frames())
			} else {
				fmt.Println("waiting for the host to join")
			}
		}
	}
}

func screenshot(ctx context.Context, c *client.Client, args []string) error {
	var out string
	var timeout time.Duration
	id := sessionFlag("screenshot", args, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "o", "screen.png", "output PNG file")
		fs.DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the picture")
	})
	// The picture goes to a file beside out, and takes its place once
	// whole: a folder that cannot take it is found before the user is
	// asked, and a failed write (a full disk) leaves what out held.
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.part")
	if err != nil {
		return fmt.Errorf("the screenshot cannot be saved there: %w", err)
	}
	saved := false
	defer func() {
		if !saved {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	j, err := joinFor(ctx, c, id, protocol.PermView)
	if err != nil {
		return err
	}
	defer j.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	img, err := j.Screenshot(ctx)
	if err != nil {
		return err
	}
	err = png.Encode(f, img)
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = os.Rename(f.Name(), out)
	}
	if err != nil {
		return fmt.Errorf("the screenshot was not saved: %w", err)
	}
	saved = true
	b := img.Bounds()
	fmt.Printf("Saved %dx%d screen to %s\n", b.Dx(), b.Dy(), out)
	return nil
}

func end(ctx context.Context, c *client.Client, args []string) error {
	id := sessionFlag("end", args, nil)
	if err := c.EndSession(ctx, id); err != nil {
		return err
	}
	fmt.Println("Ended session", id, "for everyone.")
	return nil
}
