// Package e2e holds the end-to-end tests that run the real programs
// together: a broker, a host capturing a real Xvfb display painted by a
// real X client, and the Go viewer client.
package e2e
