//go:build !linux

package shell

import (
	"os"
	"syscall"
)

// self is the running program.
func self() string {
	p, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return p
}

// shellAttr makes the shell the leader of its terminal's session.
func shellAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
}

// becomeSubreaper does nothing: orphans go to init, and only the shell's
// session is killed.
func becomeSubreaper() {}

// descendants finds nothing without /proc.
func descendants(int) []int { return nil }
