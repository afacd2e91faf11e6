//go:build linux

package capture

import (
	"testing"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/tether-support/tether/internal/xtest"
)

// TestDisplaysLeaveXgbTablesAlone: listing the monitors again does not
// write xgb's process-wide event table, which the reader goroutine of
// every xgb connection receiving events (the clipboard's) reads without a
// lock. The test takes RandR's first event out of the table after a first
// listing; a second listing must not put it back.
func TestDisplaysLeaveXgbTablesAlone(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	if _, err := Displays(); err != nil {
		t.Fatal(err)
	}
	conn, _ := xconn(t, display)
	const name = "RANDR"
	ext, err := xproto.QueryExtension(conn, uint16(len(name)), name).Reply()
	if err != nil || !ext.Present {
		t.Fatalf("Xvfb has no RandR: %v", err)
	}
	code := int(ext.FirstEvent)
	xgbMu.Lock()
	saved, ok := xgb.NewEventFuncs[code]
	delete(xgb.NewEventFuncs, code)
	xgbMu.Unlock()
	if !ok {
		t.Fatal("the first listing did not set xgb up for RandR's events")
	}
	t.Cleanup(func() {
		xgbMu.Lock()
		xgb.NewEventFuncs[code] = saved
		xgbMu.Unlock()
	})
	for range 3 {
		list, err := Displays()
		if err != nil || len(list) == 0 {
			t.Fatalf("Displays = %v, %v", list, err)
		}
	}
	xgbMu.Lock()
	_, written := xgb.NewEventFuncs[code]
	xgbMu.Unlock()
	if written {
		t.Error("listing the monitors again wrote xgb's event table")
	}
}
