//go:build !(linux || freebsd || openbsd || netbsd)

package clipboard

import "github.com/go-vgo/robotgo"

func readText() (string, error) {
	return robotgo.ReadAll()
}
