//go:build linux

package capture

import (
	"testing"

	"github.com/tether-support/tether/internal/xtest"
)

// The benchmarks run against a 1920x1080 Xvfb showing the xpattern test
// picture; the figures to compare with are in /shared/TESTING.md.

func benchDisplay(b *testing.B) {
	b.Helper()
	display := xtest.StartXvfb(b, 1920, 1080)
	b.Setenv("DISPLAY", display)
	xtest.StartPattern(b, display)
}

func benchCapture(b *testing.B, o opener) {
	benchDisplay(b)
	c := mustOpen(b, o, 0)
	w, h := c.Size()
	b.SetBytes(int64(4 * w * h))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Capture(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCapturePortable(b *testing.B) { benchCapture(b, opener{NamePortable, OpenPortable}) }
