//go:build !linux || !cgo

package capture

// Open opens the portable path: the XShm path needs Linux and cgo.
func Open(display int) (Capturer, error) { return OpenPortable(display) }
