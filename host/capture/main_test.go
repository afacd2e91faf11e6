//go:build linux

package capture

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/tether-support/tether/internal/xtest"
)

// The X servers and clients the tests run come from internal/xtest.

func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	xtest.Cleanup()
	if code == 0 {
		if err := checkGoroutines(before); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkGoroutines fails when goroutines started by the tests (ours or the
// xgb connections under them) are still running. Closed connections take a
// moment to wind down, hence the wait.
func checkGoroutines(before int) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			return fmt.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
