package session

import (
	"os"
	"testing"

	"github.com/tether-support/tether/internal/xtest"
)

// The X server and the input witness come from internal/xtest.
func TestMain(m *testing.M) {
	code := m.Run()
	xtest.Cleanup()
	os.Exit(code)
}
