//go:build !linux

package main

// switchedFromDesktop is Linux's check for su; elsewhere the variables of
// the tools that switch users say it.
func switchedFromDesktop() bool { return false }
