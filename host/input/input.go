// Package input injects a technician's pointer and keyboard events into the
// user's desktop. Every event is validated against the shared display
// before it is faked (through XTest on X11, robotgo elsewhere); what is
// pressed is tracked so that it can all be released when the technician
// leaves, loses focus or loses control: no stuck Ctrl.
package input

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/go-vgo/robotgo"

	"github.com/tether-support/tether/internal/protocol"
)

// ErrRejected is wrapped by errors for events that were dropped.
var ErrRejected = errors.New("input event rejected")

// buttonNames name protocol buttons; robotgo knows the first three.
var buttonNames = map[int]string{
	protocol.ButtonLeft:    "left",
	protocol.ButtonMiddle:  "center",
	protocol.ButtonRight:   "right",
	protocol.ButtonBack:    "back",
	protocol.ButtonForward: "forward",
}

// xButtons are the X button numbers of protocol buttons: back and forward
// are 8 and 9, as browsers and file managers on X11 read them.
var xButtons = map[int]byte{protocol.ButtonLeft: 1, protocol.ButtonMiddle: 2, protocol.ButtonRight: 3,
	protocol.ButtonBack: 8, protocol.ButtonForward: 9}

// The X buttons of the wheel's notches.
const (
	xWheelUp, xWheelDown, xWheelLeft, xWheelRight = 4, 5, 6, 7
)

// Injector applies validated input events to one display.
type Injector struct {
	log *slog.Logger

	// bounds is the shared display's origin on the virtual screen and its
	// size, as it is now: the user may change the resolution, the
	// technician the display.
	bounds func() (x, y, w, h int)

	// kbd presses keys by position (X11); nil where keys go by character
	// through robotgo.
	kbd keyboard
	// ptr moves the pointer and presses its buttons as a device does
	// (X11); nil where robotgo does. Where both are set they send on one
	// connection, in order.
	ptr pointer

	mu sync.Mutex
	// released counts ReleaseAll calls; a text being typed stops at the
	// next character when it changes (control taken back, a pause).
	released atomic.Uint64
	keys     map[string]bool // pressed robotgo key names
	codes    map[string]bool // key codes pressed through kbd
	buttons  map[int]bool    // pressed buttons

	applied atomic.Uint64
	dropped atomic.Uint64
}

func init() {
	// robotgo sleeps after each key event by default; a remote keystroke
	// must not wait for anything.
	robotgo.KeySleep = 0
	robotgo.MouseSleep = 0
}

// keyboard presses a key by its position on the keyboard
// (KeyboardEvent.code); handled is false for a key it does not know.
type keyboard interface {
	toggle(code string, down bool) (handled bool, err error)
	// typeRune types a character no key of the layout has.
	typeRune(r rune) error
}

// pointer fakes a pointing device.
type pointer interface {
	// move puts the pointer at a point on the virtual screen.
	move(x, y int) error
	// button presses or releases X button n (1 to 3 left, middle and
	// right; 4 to 7 the wheel's notches up, down, left and right; 8 and 9
	// back and forward).
	button(n byte, down bool) error
	// sync returns once the server has taken every event sent before
	// (the keyboard's too), so that one robotgo sends next comes after
	// them.
	sync() error
}

// New returns an Injector for the display bounds gives, as its origin on
// the virtual screen and its size. The caller must have checked that the
// X display is reachable: robotgo crashes the process without one.
func New(logger *slog.Logger, bounds func() (x, y, w, h int)) *Injector {
	if logger == nil {
		logger = slog.Default()
	}
	in := &Injector{log: logger.With("component", "input"), bounds: bounds,
		keys: map[string]bool{}, codes: map[string]bool{}, buttons: map[int]bool{}}
	ptr, kbd, err := openDevices(in.log)
	if ptr == nil {
		in.log.Info("the pointer is warped, not moved: the technician sees it move a little late", "err", err)
	}
	if kbd == nil {
		in.log.Info("keys go by character, not by position: on a keyboard layout other than US some keys type other characters", "err", err)
	}
	// An interface holding a nil pointer is not nil.
	if ptr != nil {
		in.ptr = ptr
	}
	if kbd != nil {
		in.kbd = kbd
	}
	return in
}

// Stats returns how many events were applied and dropped.
func (in *Injector) Stats() (applied, dropped uint64) {
	return in.applied.Load(), in.dropped.Load()
}

// Handle decodes and applies one input message. Invalid events are
// dropped, counted, and reported in the error.
func (in *Injector) Handle(msg []byte) error {
	ev, err := protocol.DecodeInput(msg)
	if err == nil {
		err = in.Apply(ev)
	}
	if err != nil {
		in.dropped.Add(1)
		return err
	}
	in.applied.Add(1)
	return nil
}

// Apply injects one decoded event.
func (in *Injector) Apply(ev protocol.InputEvent) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch ev.Kind {
	case protocol.InputMove:
		x, y, err := in.point(ev.X, ev.Y)
		if err != nil {
			return err
		}
		return in.moveLocked(x, y)
	case protocol.InputButton:
		if !in.hasButton(ev.Button) {
			return fmt.Errorf("%w: button %d is not supported", ErrRejected, ev.Button)
		}
		x, y, err := in.point(ev.X, ev.Y)
		if err != nil && !ev.Down && in.buttons[ev.Button] {
			// A held button is let go where the pointer is: the display
			// may have shrunk under a drag, and refusing the release
			// would leave the user's button held down.
			if err := in.buttonLocked(ev.Button, false); err != nil {
				return err
			}
			in.buttons[ev.Button] = false
			return nil
		}
		if err != nil {
			return err
		}
		if ev.Down == in.buttons[ev.Button] {
			return nil // already in that state (a repeated down or a stray up)
		}
		if err := in.moveLocked(x, y); err != nil {
			return err
		}
		if err := in.buttonLocked(ev.Button, ev.Down); err != nil {
			return err
		}
		in.buttons[ev.Button] = ev.Down
	case protocol.InputWheel:
		return in.wheelLocked(ev.DX, ev.DY)
	case protocol.InputKey:
		return in.keyLocked(ev.Code, ev.Down)
	case protocol.InputText:
		if !utf8.ValidString(ev.Text) {
			return fmt.Errorf("%w: text is not UTF-8", ErrRejected)
		}
		return in.typeLocked(ev.Text)
	case protocol.InputReleaseAll:
		in.releaseLocked()
	default:
		return fmt.Errorf("%w: kind %d", ErrRejected, ev.Kind)
	}
	return nil
}

// moveLocked puts the pointer at x, y on the virtual screen.
func (in *Injector) moveLocked(x, y int) error {
	if in.ptr == nil {
		robotgo.Move(x, y)
		return nil
	}
	if err := in.ptr.move(x, y); err != nil {
		return fmt.Errorf("move the pointer: %w", err)
	}
	return nil
}

// hasButton says whether protocol button b can be pressed here: robotgo
// has no back and forward buttons.
func (in *Injector) hasButton(b int) bool {
	if in.ptr != nil {
		_, ok := xButtons[b]
		return ok
	}
	return b == protocol.ButtonLeft || b == protocol.ButtonMiddle || b == protocol.ButtonRight
}

// buttonLocked presses or releases a protocol button.
func (in *Injector) buttonLocked(b int, down bool) error {
	if in.ptr != nil {
		if err := in.ptr.button(xButtons[b], down); err != nil {
			return fmt.Errorf("button %s: %w", buttonNames[b], err)
		}
		return nil
	}
	if err := robotgo.Toggle(buttonNames[b], upDown(down)); err != nil {
		return fmt.Errorf("button %s: %w", buttonNames[b], err)
	}
	return nil
}

// wheelLocked turns the wheel dx notches right and dy down (negative:
// left, up).
func (in *Injector) wheelLocked(dx, dy int) error {
	if in.ptr == nil {
		// robotgo.Scroll is (x, y) in notches with x positive = left and
		// y positive = up (X buttons 6 and 4).
		robotgo.Scroll(-dx, -dy, 0)
		return nil
	}
	notch := func(n byte, times int) error {
		for range times {
			if err := in.ptr.button(n, true); err != nil {
				return err
			}
			if err := in.ptr.button(n, false); err != nil {
				return err
			}
		}
		return nil
	}
	return errors.Join(notch(xWheelRight, dx), notch(xWheelLeft, -dx), notch(xWheelDown, dy), notch(xWheelUp, -dy))
}

// robotgoLocked readies for an event robotgo sends on its own connection:
// it must come after those sent through the pointer and keyboard.
func (in *Injector) robotgoLocked() error {
	if in.ptr == nil {
		return nil
	}
	return in.ptr.sync()
}

// keyLocked presses or releases the key at code's place on the keyboard.
func (in *Injector) keyLocked(code string, down bool) error {
	if in.kbd != nil && (down || in.codes[code]) {
		handled, err := in.kbd.toggle(code, down)
		if handled {
			if err != nil {
				return err
			}
			if down {
				in.codes[code] = true
			} else {
				delete(in.codes, code)
			}
			return nil
		}
	}
	name, ok := keyNames[code]
	if !ok {
		return fmt.Errorf("%w: unknown key %q", ErrRejected, code)
	}
	if !down && !in.keys[name] {
		return nil // an up for a key we never pressed
	}
	if err := in.robotgoLocked(); err != nil {
		return err
	}
	if err := robotgo.KeyToggle(name, upDown(down)); err != nil {
		return fmt.Errorf("key %s: %w", code, err)
	}
	if down {
		in.keys[name] = true
	} else {
		delete(in.keys, name)
	}
	return nil
}

// typeLocked types text. A line break and a tab are the Enter and Tab
// keys, and a character beyond the Basic Multilingual Plane (an emoji) is
// typed through the keyboard by position: robotgo would drop them all.
func (in *Injector) typeLocked(text string) error {
	// Typed a character at a time: an emoji takes a keyboard remap and a
	// pause, and 64 bytes of them a third of a second, which a user who
	// takes control back or pauses does not wait for.
	released := in.released.Load()
	for _, r := range text {
		if in.released.Load() != released {
			return fmt.Errorf("%w: control was taken back while the text was typed", ErrRejected)
		}
		if r != '\n' && r != '\t' && r <= 0xffff {
			if err := in.robotgoLocked(); err != nil {
				return err
			}
			robotgo.Type(string(r))
			continue
		}
		if r > 0xffff {
			if in.kbd == nil {
				return fmt.Errorf("%w: %q cannot be typed here", ErrRejected, r)
			}
			if err := in.kbd.typeRune(r); err != nil {
				return err
			}
			continue
		}
		code := "Enter"
		if r == '\t' {
			code = "Tab"
		}
		if err := in.keyLocked(code, true); err != nil {
			return err
		}
		if err := in.keyLocked(code, false); err != nil {
			return err
		}
	}
	return nil
}

// point checks display coordinates and turns them into virtual-screen
// coordinates.
func (in *Injector) point(x, y int) (int, int, error) {
	ox, oy, w, h := in.bounds()
	if x < 0 || y < 0 || x >= w || y >= h {
		return 0, 0, fmt.Errorf("%w: point %d,%d is outside the %dx%d display", ErrRejected, x, y, w, h)
	}
	return ox + x, oy + y, nil
}

// ReleaseAll lets go of every key and button the technician holds.
func (in *Injector) ReleaseAll() {
	in.released.Add(1) // stops a text being typed, which holds mu
	in.mu.Lock()
	defer in.mu.Unlock()
	in.releaseLocked()
}

func (in *Injector) releaseLocked() {
	for code := range in.codes {
		if _, err := in.kbd.toggle(code, false); err != nil {
			in.log.Warn("release key", "key", code, "err", err)
		}
		delete(in.codes, code)
	}
	if len(in.keys) > 0 {
		if err := in.robotgoLocked(); err != nil {
			in.log.Warn("release keys", "err", err)
		}
	}
	for name := range in.keys {
		if err := robotgo.KeyToggle(name, "up"); err != nil {
			in.log.Warn("release key", "key", name, "err", err)
		}
		delete(in.keys, name)
	}
	for b, down := range in.buttons {
		if down {
			if err := in.buttonLocked(b, false); err != nil {
				in.log.Warn("release button", "button", b, "err", err)
			}
		}
		delete(in.buttons, b)
	}
}

func upDown(down bool) string {
	if down {
		return "down"
	}
	return "up"
}
