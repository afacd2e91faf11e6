package server

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tether-support/tether/broker/signal"
	"github.com/tether-support/tether/broker/store"
	"github.com/tether-support/tether/internal/launch"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/web"
)

var joinTemplate = template.Must(template.New("join").Parse(web.JoinPage))

// permissionWhat says in the user's words what each permission lets a
// technician do, as the host does when it asks.
var permissionWhat = map[string]string{
	protocol.PermView:      "see your screen",
	protocol.PermControl:   "use your mouse and keyboard",
	protocol.PermClipboard: "read and set your clipboard",
	protocol.PermFiles:     "fetch any file in your home folder, and send you files (saved in ~/Downloads/Tether)", // the host run from this page shares those
	protocol.PermShell:     "run commands as you in a terminal",
}

type joinPermission struct{ Name, What string }

type joinPage struct {
	State               string // ready, invalid, expired, used, limited
	Title, Message      string
	Org                 string
	Technician          string
	Ticket, TicketTitle string
	CodeGroups          string
	// ExpiresIn is how long the code stays valid, as the user reads it: the
	// page knows no time zone of theirs, and they need the time left.
	ExpiresIn             string
	Permissions           []joinPermission
	HostAvailable         bool
	DownloadURL, FileName string
	Linux                 bool
	Platform              string
}

// validCode reports whether s looks like a support code at all, so that
// junk never reaches the store or counts as a guess.
func validCode(s string) bool {
	return len(s) == signal.CodeDigits && strings.Trim(s, "0123456789") == ""
}

// lookUpJoin checks the code of a join request, answering the failure
// page itself; ok means sess is the session to join.
func (b *Broker) lookUpJoin(w http.ResponseWriter, r *http.Request) (sess *store.Session, code string, ok bool) {
	// Written as it is read out ("482 193 075", "482-193-075"), it is the
	// same code.
	code = strings.NewReplacer(" ", "", "-", "").Replace(r.PathValue("code"))
	page := joinPage{Org: b.cfg.Organisation}
	var err error
	if validCode(code) {
		sess, err = b.hub.PeekCode(r, code)
	} else {
		err = store.ErrCodeUnknown
	}
	var limited *signal.RateLimitError
	switch {
	case err == nil:
		return sess, code, true
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(int(limited.RetryAfter.Seconds()+0.999)))
		page.State, page.Title, page.Message = "limited", "Too many tries", limited.Advice()
		b.renderJoin(w, http.StatusTooManyRequests, page)
	case errors.Is(err, store.ErrCodeExpired):
		page.State, page.Title, page.Message = "expired", "This support code has expired", "Codes are valid for a few minutes only. Ask your technician for a new link."
		b.renderJoin(w, http.StatusGone, page)
	case errors.Is(err, store.ErrCodeUsed) && b.hub.CodeInSession(code):
		page.State, page.Title, page.Message = "in-session", "This support code is connected", "Your support session with it is going on in the Tether window you started it in. Use that window; there is nothing to download again."
		b.renderJoin(w, http.StatusGone, page)
	case errors.Is(err, store.ErrCodeUsed):
		page.State, page.Title, page.Message = "used", "This support code was already used", "Each code works once. If your session ended, ask your technician for a new link."
		b.renderJoin(w, http.StatusGone, page)
	case errors.Is(err, store.ErrCodeUnknown):
		page.State, page.Title, page.Message = "invalid", "This support code is not valid", "Check the link your technician sent you, or ask them for a new one."
		b.renderJoin(w, http.StatusNotFound, page)
	default:
		b.cfg.Logger.Error("join page", "err", err)
		page.State, page.Title, page.Message = "error", "Something went wrong", "The support server could not check your code. Try again in a moment."
		b.renderJoin(w, http.StatusInternalServerError, page)
	}
	return nil, "", false
}

// serveJoin is the page a user opens from a support link: who wants to
// help, what they will ask, and the host with the code filled in.
func (b *Broker) serveJoin(w http.ResponseWriter, r *http.Request) {
	sess, code, ok := b.lookUpJoin(w, r)
	if !ok {
		return
	}
	page := joinPage{State: "ready", Title: "Remote support", Org: b.cfg.Organisation, Ticket: sess.TicketID, TicketTitle: sess.TicketTitle,
		CodeGroups: code[0:3] + " " + code[3:6] + " " + code[6:9],
		ExpiresIn:  minutesLeft(sess.CodeExpiresAt.Sub(b.cfg.Now())),
		FileName:   "tether-host-" + code, DownloadURL: "/join/" + code + "/host",
	}
	if u, err := b.store.UserByID(r.Context(), sess.CreatedBy); err == nil {
		page.Technician = u.Username
	}
	for _, p := range sess.Permissions {
		page.Permissions = append(page.Permissions, joinPermission{p, permissionWhat[p]})
	}
	_, err := os.Stat(b.hostBinary)
	page.HostAvailable = err == nil
	page.Platform, page.Linux = platform(r.UserAgent())
	b.renderJoin(w, http.StatusOK, page)
}

// minutesLeft says how long d is, in whole minutes rounded up.
func minutesLeft(d time.Duration) string {
	if m := int((d + time.Minute - 1) / time.Minute); m > 1 {
		return fmt.Sprintf("%d minutes", m)
	}
	return "1 minute"
}

// platform names the user's system from its browser's User-Agent.
func platform(ua string) (string, bool) {
	switch {
	case strings.Contains(ua, "Windows"):
		return "Windows", false
	case strings.Contains(ua, "Android"):
		return "Android", false
	case strings.Contains(ua, "iPhone"), strings.Contains(ua, "iPad"):
		return "iOS", false
	case strings.Contains(ua, "Mac OS X"), strings.Contains(ua, "Macintosh"):
		return "macOS", false
	default:
		return "Linux", true
	}
}

func (b *Broker) renderJoin(w http.ResponseWriter, status int, page joinPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := joinTemplate.Execute(w, page); err != nil {
		b.cfg.Logger.Error("render join page", "err", err)
	}
}

func serveJoinCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Write(web.JoinCSS)
}

// downloadBroker is the broker address a host downloaded by r connects to.
// Without -public-addr, that is the name the user's browser reached the
// broker by, when the broker's certificate covers it (the development
// certificate names the machine's own host name): localhost would send a
// host on another computer to itself. Any other name is told in the log,
// with what to set.
func (b *Broker) downloadBroker(r *http.Request) string {
	if b.cfg.PublicAddr != "" || b.cfg.PublicURL != "" {
		return b.url
	}
	name := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		name = h
	}
	if c, err := b.certs.get(); err == nil && c.Leaf != nil && c.Leaf.VerifyHostname(name) == nil {
		return "https://" + r.Host
	}
	b.cfg.Logger.Warn("a host program was downloaded from a join page opened by a name the broker's certificate does not cover: it connects to "+b.url+"; start the broker with -public-addr and the name users reach it by",
		"name", name)
	return b.url
}

// serveHostDownload sends the Linux host with the broker's address, the
// code and the development CA appended, so the user only has to run it.
func (b *Broker) serveHostDownload(w http.ResponseWriter, r *http.Request) {
	_, code, ok := b.lookUpJoin(w, r)
	if !ok {
		return
	}
	f, err := os.Open(b.hostBinary)
	if err != nil {
		b.cfg.Logger.Warn("host download not available", "path", b.hostBinary, "err", err)
		b.renderJoin(w, http.StatusNotFound, joinPage{State: "missing", Org: b.cfg.Organisation, Title: "The download is not available",
			Message: "This support server does not offer the host program. Ask your technician how to get it, then run it with your code."})
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		http.Error(w, "host program unreadable", http.StatusInternalServerError)
		return
	}
	settings := launch.Settings{Broker: b.downloadBroker(r), Code: code}
	// Otherwise the host trusts the system's certificates: built in, the
	// development CA would be the only one it trusted.
	if b.usersNeedDevCA() {
		if ca, err := os.ReadFile(b.caFile); err == nil {
			settings.CAPEM = string(ca)
		}
	}
	trailer, err := launch.Trailer(settings)
	if err != nil {
		http.Error(w, "could not prepare the download", http.StatusInternalServerError)
		return
	}
	name := "tether-host-" + code
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size()+int64(len(trailer)), 10))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Last-Modified", info.ModTime().UTC().Format(http.TimeFormat))
	if _, err := io.Copy(w, f); err != nil {
		return
	}
	w.Write(trailer)
	b.cfg.Logger.Info("host downloaded", "remote", r.RemoteAddr, "bytes", info.Size(), "at", time.Now().UTC().Format(time.RFC3339))
}
