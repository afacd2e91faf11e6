//go:build linux || freebsd || openbsd || netbsd

package capture

// checkPortable fails with ErrNoDisplay before kbinani/screenshot runs, which
// would otherwise report a missing display as zero monitors.
func checkPortable(display int) error {
	_, _, err := probeX(display)
	return err
}
