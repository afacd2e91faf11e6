//go:build unix

package files

import (
	"io/fs"
	"syscall"
)

// links returns how many names (hard links) the file has, or 1 when
// unknown.
func links(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
