package files

import (
	"io/fs"
	"os"
	"syscall"
)

// links returns how many names (hard links) the open file f has, or 1 when
// unknown. NTFS keeps hard links too; Windows says how many through the
// open handle, not through what Stat returns.
func links(f *os.File, _ fs.FileInfo) uint64 {
	var d syscall.ByHandleFileInformation
	if err := syscall.GetFileInformationByHandle(syscall.Handle(f.Fd()), &d); err != nil {
		return 1
	}
	return uint64(d.NumberOfLinks)
}
