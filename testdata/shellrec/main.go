// Command shellrec writes the archive of a session that had a shell and
// moved files, through the broker's own recorder and signing key, into a
// broker's data directory, and registers it in the broker's database. The
// browser tests use it to play a shell transcript and show file markers
// before the relay carries shells and files.
//
//	shellrec -data DIR -session ID
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tether-support/tether/broker/record"
	"github.com/tether-support/tether/broker/signal"
	"github.com/tether-support/tether/broker/store"
)

func main() {
	data := flag.String("data", "", "the broker's data directory")
	session := flag.String("session", "", "the session id (created through the API)")
	flag.Parse()
	if err := run(*data, *session); err != nil {
		fmt.Fprintln(os.Stderr, "shellrec:", err)
		os.Exit(1)
	}
	fmt.Println("recorded", *session)
}

func run(data, session string) error {
	if data == "" || session == "" {
		return fmt.Errorf("usage: shellrec -data DIR -session ID")
	}
	key, err := record.LoadOrCreateKey(data)
	if err != nil {
		return err
	}
	rec, err := record.New(record.Config{Dir: filepath.Join(data, "recordings"), Key: key, ShellInput: true})
	if err != nil {
		return err
	}
	var sealed *record.Manifest
	s, err := rec.Start(record.Info{Session: session, Ticket: "INC-SHELL", Technician: "admin", OnSealed: func(m *record.Manifest) { sealed = m }})
	if err != nil {
		return err
	}
	pause := func() { time.Sleep(150 * time.Millisecond) }
	s.Event("consent.granted", "user", []byte(`{"viewer":"admin","requested":["view","shell","files"],"granted":["view","shell","files"]}`))
	pause()
	s.Event("shell.opened", "admin", []byte(`{"channel":"shell-1"}`))
	s.ShellOpened("shell-1", "v_admin", 80, 24)
	pause()
	s.ShellData("shell-1", true, []byte("\x1b[1;32muser@desk\x1b[0m:~$ "))
	for _, c := range "echo hello-from-shell\r" {
		s.ShellData("shell-1", false, []byte(string(c)))
		s.ShellData("shell-1", true, []byte(string(c)))
		time.Sleep(20 * time.Millisecond)
	}
	s.ShellData("shell-1", true, []byte("\nhello-from-shell\r\n"))
	pause()
	s.ShellData("shell-1", true, []byte("\x1b[1;32muser@desk\x1b[0m:~$ uname -s\r\nLinux\r\n\x1b[1;32muser@desk\x1b[0m:~$ "))
	pause()
	// The broker's own hash of what it relayed: the same for the first
	// file; for the second, other bytes than the user's computer hashed.
	s.Event("file.transfer", "admin", []byte(`{"name":"report.pdf","size":48213,"sha256":"3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","relayed_sha256":"3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","direction":"download","path":"/home/user/report.pdf"}`))
	pause()
	s.Event("file.transfer", "admin", []byte(`{"name":"fix.sh","size":512,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","relayed_sha256":"60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752","direction":"upload","path":"/home/user/fix.sh"}`))
	pause()
	s.ShellData("shell-1", true, []byte("exit\r\n"))
	s.ShellClosed("shell-1")
	s.Event("shell.closed", "admin", []byte(`{"channel":"shell-1","code":0}`))
	s.Event("session.ended", "broker", []byte(`{"reason":"The technician ended the session."}`))
	if err := s.Finish("The technician ended the session."); err != nil {
		return err
	}
	st, err := store.OpenSQLite(context.Background(), filepath.Join(data, "tether.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	return st.UpdateRecording(context.Background(), signal.RecordingSummary(sealed))
}
