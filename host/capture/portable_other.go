//go:build !(linux || freebsd || openbsd || netbsd)

package capture

func checkPortable(display int) error { return checkIndex(display) }
