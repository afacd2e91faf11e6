//go:build unix

package files

import (
	"io/fs"
	"os"
	"syscall"
)

// links returns how many names (hard links) the open file with info has,
// or 1 when unknown.
func links(_ *os.File, info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
