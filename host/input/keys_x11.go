//go:build linux || freebsd || openbsd || netbsd

package input

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jezek/xgb/xproto"
)

// xKeycodes are the X keycodes of the keys at each KeyboardEvent.code
// position: the Linux evdev scan code plus 8, as every X server with the
// evdev or libinput driver (and Xvfb, and Xwayland) numbers them. Pressing
// the keycode, not a character, lets the user's own layout decide what
// the key types, as if the user pressed it: the key right of 0 types ß on
// a German desktop, - on a US one.
var xKeycodes = map[string]byte{
	"Escape": 9, "Digit1": 10, "Digit2": 11, "Digit3": 12, "Digit4": 13, "Digit5": 14, "Digit6": 15,
	"Digit7": 16, "Digit8": 17, "Digit9": 18, "Digit0": 19, "Minus": 20, "Equal": 21, "Backspace": 22,
	"Tab": 23, "KeyQ": 24, "KeyW": 25, "KeyE": 26, "KeyR": 27, "KeyT": 28, "KeyY": 29, "KeyU": 30,
	"KeyI": 31, "KeyO": 32, "KeyP": 33, "BracketLeft": 34, "BracketRight": 35, "Enter": 36,
	"ControlLeft": 37, "KeyA": 38, "KeyS": 39, "KeyD": 40, "KeyF": 41, "KeyG": 42, "KeyH": 43,
	"KeyJ": 44, "KeyK": 45, "KeyL": 46, "Semicolon": 47, "Quote": 48, "Backquote": 49, "ShiftLeft": 50,
	"Backslash": 51, "KeyZ": 52, "KeyX": 53, "KeyC": 54, "KeyV": 55, "KeyB": 56, "KeyN": 57, "KeyM": 58,
	"Comma": 59, "Period": 60, "Slash": 61, "ShiftRight": 62, "NumpadMultiply": 63, "AltLeft": 64,
	"Space": 65, "CapsLock": 66, "F1": 67, "F2": 68, "F3": 69, "F4": 70, "F5": 71, "F6": 72, "F7": 73,
	"F8": 74, "F9": 75, "F10": 76, "NumLock": 77, "ScrollLock": 78, "Numpad7": 79, "Numpad8": 80,
	"Numpad9": 81, "NumpadSubtract": 82, "Numpad4": 83, "Numpad5": 84, "Numpad6": 85, "NumpadAdd": 86,
	"Numpad1": 87, "Numpad2": 88, "Numpad3": 89, "Numpad0": 90, "NumpadDecimal": 91,
	"IntlBackslash": 94, "F11": 95, "F12": 96, "IntlRo": 97, "NumpadEnter": 104, "ControlRight": 105,
	"NumpadDivide": 106, "PrintScreen": 107, "AltRight": 108, "Home": 110, "ArrowUp": 111, "PageUp": 112,
	"ArrowLeft": 113, "ArrowRight": 114, "End": 115, "ArrowDown": 116, "PageDown": 117, "Insert": 118,
	"Delete": 119, "AudioVolumeMute": 121, "AudioVolumeDown": 122, "AudioVolumeUp": 123,
	"NumpadEqual": 125, "Pause": 127, "IntlYen": 132, "MetaLeft": 133, "MetaRight": 134,
	"ContextMenu": 135, "MediaTrackNext": 171, "MediaPlayPause": 172, "MediaTrackPrevious": 173,
	"MediaStop": 174, "F13": 191, "F14": 192, "F15": 193, "F16": 194, "F17": 195, "F18": 196,
	"F19": 197, "F20": 198, "F21": 199, "F22": 200, "F23": 201, "F24": 202,
}

// openKeyboard checks that the server numbers its keys the evdev way (Up
// at 111 whatever the layout), so that keys can go by position, and finds
// a spare keycode for characters the layout lacks.
func (d *xDevice) openKeyboard() error {
	setup := xproto.Setup(d.conn)
	const up = 0xff52 // XK_Up
	km, err := xproto.GetKeyboardMapping(d.conn, 111, 1).Reply()
	if err != nil || setup.MinKeycode > 111 || len(km.Keysyms) == 0 || km.Keysyms[0] != up {
		return errors.New("the X server does not number its keys the evdev way")
	}
	n := byte(setup.MaxKeycode - setup.MinKeycode + 1)
	if all, err := xproto.GetKeyboardMapping(d.conn, setup.MinKeycode, n).Reply(); err == nil && all.KeysymsPerKeycode > 0 {
		per := int(all.KeysymsPerKeycode)
		for i := int(n) - 1; i >= 0 && d.spare == 0; i-- {
			if !slices.ContainsFunc(all.Keysyms[i*per:(i+1)*per], func(s xproto.Keysym) bool { return s != 0 }) {
				d.spare, d.perCode = setup.MinKeycode+xproto.Keycode(i), all.KeysymsPerKeycode
			}
		}
	}
	return nil
}

// typeRune types a character that has no key of its own (an emoji)
// through the spare keycode.
func (d *xDevice) typeRune(r rune) error {
	if d.spare == 0 {
		return fmt.Errorf("%w: no spare keycode to type %q", ErrRejected, r)
	}
	sym := xproto.Keysym(r)
	if r > 0xff {
		sym = 0x01000000 | xproto.Keysym(r) // X11's Unicode keysyms
	}
	syms := make([]xproto.Keysym, d.perCode)
	for i := range syms {
		syms[i] = sym
	}
	if err := xproto.ChangeKeyboardMappingChecked(d.conn, 1, d.spare, d.perCode, syms).Check(); err != nil {
		return fmt.Errorf("map %q: %w", r, err)
	}
	d.fake(xproto.KeyPress, byte(d.spare), 0, 0)
	d.fake(xproto.KeyRelease, byte(d.spare), 0, 0)
	// The application reads the new mapping when it sees the key: the
	// next character must not remap the keycode before it has.
	if err := d.sync(); err != nil {
		return fmt.Errorf("type %q: %w", r, err)
	}
	time.Sleep(20 * time.Millisecond)
	return nil
}

func (d *xDevice) toggle(code string, down bool) (bool, error) {
	kc, ok := xKeycodes[code]
	if !ok {
		return false, nil
	}
	typ := byte(xproto.KeyRelease)
	if down {
		typ = xproto.KeyPress
	}
	d.fake(typ, kc, 0, 0)
	return true, nil
}
