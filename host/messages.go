package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tether-support/tether/host/capture"
	"github.com/tether-support/tether/host/files"
	"github.com/tether-support/tether/host/session"
	"github.com/tether-support/tether/internal/dial"
)

// What forUser needs to know of the command line: the support server the
// host was pointed at, the certificate file and the monitor asked for.
var (
	serverHost string
	caFile     string
	monitor    int
)

// forUser says what err means for the person at this computer, and what
// to do, in words they can act on; what broke, in Go's words, is for
// whoever helps them (shown with -v).
func forUser(err error) string {
	server := "the support server"
	if serverHost != "" {
		server += " at " + serverHost
	}
	var dnsErr *net.DNSError
	var rootErr *files.RootError
	var inboxErr *files.InboxError
	switch {
	case errors.Is(err, dial.ErrUntrusted):
		return "This computer cannot confirm that it is talking to " + server + ": its security certificate is not trusted, so nothing was shared. " +
			"Tell your technician this message; they may give you a certificate file to add with -ca."
	case errors.Is(err, dial.ErrUnreachable) && errors.As(err, &dnsErr):
		return "Could not find " + server + ". Check that the address is exactly the one your technician gave you, and that this computer is online."
	case errors.Is(err, dial.ErrUnreachable) && errors.Is(err, context.DeadlineExceeded):
		return capitalize(server) + " did not answer. Check this computer's internet connection, then try again."
	case errors.Is(err, dial.ErrUnreachable):
		return "Could not reach " + server + ". Check that this computer is online and that the address is the one your technician gave you, then try again."
	case errors.Is(err, dial.ErrBadURL):
		return "The support server's address is missing or not right. Run the command exactly as your technician gave it: it starts with host -broker https://"
	case errors.Is(err, dial.ErrCAFile):
		why := "cannot be used"
		if errors.Is(err, fs.ErrNotExist) {
			why = "was not found"
		}
		return fmt.Sprintf("The certificate file %s %s. Check its name: it is the file your technician gave you, after -ca.", caFile, why)
	case errors.Is(err, capture.ErrWayland):
		return sentence(capture.ErrWayland.Error())
	case errors.Is(err, capture.ErrNoMonitor):
		return fmt.Sprintf("There is no monitor number %d on this computer. Leave out -display to share the main one.", monitor)
	case errors.Is(err, capture.ErrNoDisplay):
		return "No desktop to share was found on this computer. Run this command in a terminal on your desktop, not over a remote connection such as SSH."
	case errors.As(err, &rootErr):
		why := "cannot be opened"
		if errors.Is(err, fs.ErrNotExist) {
			why = "does not exist"
		}
		return fmt.Sprintf("The folder to share with technicians, %s, %s. Give an existing folder after -files-root, or leave -files-root out to share your home folder.", rootErr.Root, why)
	case errors.As(err, &inboxErr):
		why := "cannot be written to from this account"
		if errors.Is(err, files.ErrNotFolder) {
			why = "is a file, not a folder"
		}
		return fmt.Sprintf("The folder for files your technician sends you, %s, %s. Give a folder you can write to after -files-inbox, or leave -files-inbox out to receive them in Downloads/Tether.", inboxErr.Inbox, why)
	case errors.Is(err, session.ErrRefused):
		why, _ := strings.CutPrefix(err.Error(), session.ErrRefused.Error()+": ")
		return "Could not join the support session. " + sentence(why)
	}
	return sentence(err.Error())
}

// sentence starts s with a capital and ends it with a full stop.
func sentence(s string) string {
	s = capitalize(strings.TrimSpace(s))
	if r, _ := utf8.DecodeLastRuneInString(s); s != "" && !strings.ContainsRune(".!?", r) {
		s += "."
	}
	return s
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// byteSize is a flag for a size in bytes that reads and writes 4GiB,
// 500MiB, 64KiB or a plain number of bytes.
type byteSize int64

func (b *byteSize) String() string { return humanSize(int64(*b)) }

func (b *byteSize) Set(s string) error {
	s = strings.ReplaceAll(s, " ", "")
	scale := int64(1)
	for _, u := range []struct {
		suffix string
		scale  int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, scale = n, u.scale
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/scale {
		return errors.New("give a size such as 4GiB, 500MiB or a number of bytes")
	}
	*b = byteSize(n * scale)
	return nil
}
