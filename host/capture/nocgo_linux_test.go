//go:build linux && !cgo

package capture

// openName is the path Open must choose against Xvfb: without cgo there is
// only the portable one.
const openName = NamePortable
