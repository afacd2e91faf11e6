//go:build !linux

package consent

// discardTypeAhead leaves what was typed to the terminal here; a line
// finished before the question still does not answer it (see Serve).
func (t *Terminal) discardTypeAhead() {}
