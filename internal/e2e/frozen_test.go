package e2e

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-support/tether/broker/server"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/xtest"
)

// TestFrozenComputerGetsNoStaleInput: what the technician clicks and
// types while the user's computer is frozen is not played back on it when
// it comes back, on whatever it shows by then; a key held down before the
// freeze does not stay down after it; and input works again once the
// computer answers. The broker notices the freeze within a few seconds.
func TestFrozenComputerGetsNoStaleInput(t *testing.T) {
	display := xtest.StartXvfb(t, 1280, 720)
	w := xtest.StartInputWitness(t, display)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The broker's log says when it finds the host silent and back, the
	// moments it tells the viewers.
	var logs syncBuffer
	b := startBrokerWith(t, func(cfg *server.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, &logs), &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	_, j, host := joinLive(t, ctx, b, func(code string) *hostProc {
		return startHost(t, display, "-broker", b.URL(), "-ca", b.CAFile(), code)
	})
	if ok, reason, err := j.TakeControl(ctx, true); err != nil || !ok {
		t.Fatalf("take control: %v %q %v", ok, reason, err)
	}

	// Shift is held down, then the computer freezes.
	w.Skip()
	send(t, ctx, j, key("ShiftLeft", true))
	w.Wait(t, `^key down \d+ Shift_L$`, 5*time.Second)
	frozenAt := time.Now()
	if err := host.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.cmd.Process.Signal(syscall.SIGCONT) })
	waitLog := func(what string, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !strings.Contains(logs.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("the broker did not log %q within %v", what, timeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitLog("host not responding", 10*time.Second)
	// About 2 s: what is clicked in the meantime still goes through.
	if d := time.Since(frozenAt); d > 4*time.Second {
		t.Errorf("the broker found the computer frozen only %v after it stopped", d.Round(100*time.Millisecond))
	} else {
		t.Logf("found silent %v after the host stopped", d.Round(100*time.Millisecond))
	}

	// Meanwhile the technician clicks, types and lets go of Shift.
	mark := len(w.Lines())
	var evs []protocol.InputEvent
	evs = append(evs,
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 200, Y: 200},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: false, X: 200, Y: 200},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonRight, Down: true, X: 300, Y: 300},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonRight, Down: false, X: 300, Y: 300})
	evs = append(evs, tap("KeyX", "Enter")...)
	evs = append(evs, key("ShiftLeft", false))
	send(t, ctx, j, evs...)
	time.Sleep(time.Second)

	if err := host.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitLog("host responding again", 15*time.Second)
	// A click after the computer is back lands; everything sent before it
	// on the same ordered channel has arrived by then.
	send(t, ctx, j,
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: true, X: 640, Y: 360},
		protocol.InputEvent{Kind: protocol.InputButton, Button: protocol.ButtonLeft, Down: false, X: 640, Y: 360})
	w.Wait(t, `^button 1 up 640 360$`, 10*time.Second)

	shiftUp := false
	for _, l := range w.Lines()[mark:] {
		switch {
		case strings.HasPrefix(l, "key up ") && strings.HasSuffix(l, " Shift_L"):
			shiftUp = true
		case strings.HasPrefix(l, "button 1 ") && strings.HasSuffix(l, " 640 360"):
		case strings.HasPrefix(l, "button"), strings.HasPrefix(l, "key"), strings.HasPrefix(l, "text"):
			t.Errorf("input sent while the computer was frozen reached it when it came back: %q", l)
		}
	}
	if !shiftUp {
		t.Errorf("Shift, held down when the computer froze, was not released when it came back:\n%s", strings.Join(w.Lines()[mark:], "\n"))
	}
	// And the technician was told why.
	if m, ok := j.LastControl(protocol.ControlInputDropped); !ok || !strings.Contains(m.Reason, "not responding") {
		t.Errorf("the technician was not told the input was not sent: %+v", m)
	}
}
