//go:build !linux

package shell

import "os"

// self is the running program.
func self() string {
	p, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return p
}

// becomeSubreaper does nothing: orphans go to init, and only the shell's
// session is killed.
func becomeSubreaper() {}

// descendants finds nothing without /proc.
func descendants(int) []int { return nil }
