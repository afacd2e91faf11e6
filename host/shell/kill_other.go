//go:build !linux

package shell

import "syscall"

// killSession kills the shell's process group.
func killSession(sid int) { syscall.Kill(-sid, syscall.SIGKILL) }
