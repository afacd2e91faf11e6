//go:build !unix

package main

// sharing is the mark of a shared screen where there is no flock: none,
// and a host always takes itself for the only one.
type sharing struct{}

func startSharing(string) (sharing, bool) { return sharing{}, true }

func (sharing) stop() bool { return false }
