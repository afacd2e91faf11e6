package shell

import (
	"os"

	"golang.org/x/sys/unix"
)

// readsHidden reports whether the terminal on the PTY f reads input
// without showing it: echo off in canonical (line) mode, as getpass, sudo,
// ssh and `read -s` set it. Readline and full-screen programs turn off
// canonical mode too, and show what is typed themselves.
func readsHidden(f *os.File) bool {
	rc, err := f.SyscallConn() // unlike Fd, keeps the file non-blocking
	if err != nil {
		return false
	}
	hidden := false
	rc.Control(func(fd uintptr) {
		if t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS); err == nil {
			hidden = t.Lflag&unix.ECHO == 0 && t.Lflag&unix.ICANON != 0
		}
	})
	return hidden
}
