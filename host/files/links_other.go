//go:build !unix && !windows

package files

import (
	"io/fs"
	"os"
)

// links is unknown here: taken as 1.
func links(*os.File, fs.FileInfo) uint64 { return 1 }
