package main

import (
	"os"
	"syscall"
)

// switchedFromDesktop reports whether root runs in someone else's desktop
// session, as `su` leaves it: su sets none of the variables sudo, pkexec
// and doas do, but keeps the desktop's runtime folder, which belongs to
// the user who signed in.
func switchedFromDesktop() bool {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		return false
	}
	st, err := os.Stat(dir)
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Uid != 0
}
