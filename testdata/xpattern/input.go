package main

import (
	"fmt"
	"io"
	"unicode"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// inputWitness prints the input events -mode input receives, one line
// each, and toggles the window's colour on clicks. Lines (X, Y are root
// window coordinates, which are the window's own since it covers the root):
//
//	motion X Y
//	button N down X Y        (N = 1, 2, 3, 8, 9 ...)
//	button N up X Y
//	wheel up | wheel down | wheel left | wheel right   (buttons 4-7, on press only)
//	key down KEYCODE NAME    (NAME: the key's unshifted keysym, e.g. "a", "Shift_L", "F5")
//	key up KEYCODE NAME
//	text C                   (after "key down": the character the key types with the
//	                          current Shift and Caps Lock state, e.g. "text A", "text !";
//	                          a space prints as "text " followed by a space; nothing
//	                          while Control or Alt is held, which make shortcuts, not text)
//	colour #RRGGBB           (after a press of button 1-3: the new colour is on screen)
//
// A keysym without a name in the table prints as 0x followed by its hex
// value.
type inputWitness struct {
	conn  *xgb.Conn
	win   *window
	out   io.Writer
	keys  keymap
	white bool      // the window shows colourInputToggled
	stamp bool      // end lines with the wall-clock time (-stamp)
	pixel [2]uint32 // pixel values of colourInputStart and colourInputToggled
}

func newInputWitness(conn *xgb.Conn, w *window, out io.Writer) (*inputWitness, error) {
	in := &inputWitness{conn: conn, win: w, out: out}
	var err error
	for i, rgb := range [2]uint32{colourInputStart, colourInputToggled} {
		if in.pixel[i], err = w.alloc(conn, rgb); err != nil {
			return nil, err
		}
	}
	if err := in.keys.load(conn); err != nil {
		return nil, err
	}
	return in, nil
}

func (in *inputWitness) paint() error {
	i := 0
	if in.white {
		i = 1
	}
	in.win.fill(in.conn, in.pixel[i], xproto.Rectangle{Width: in.win.width, Height: in.win.height})
	return flush(in.conn)
}

// printf writes one line in one Write, so a reader never sees half a line
// and the -log file holds every line as soon as it is printed.
func (in *inputWitness) printf(format string, args ...any) error {
	if in.stamp {
		return stampf(in.out, format, args...)
	}
	if _, err := fmt.Fprintf(in.out, format+"\n", args...); err != nil {
		return fmt.Errorf("print event: %w", err)
	}
	return nil
}

func (in *inputWitness) handle(ev xgb.Event) error {
	switch e := ev.(type) {
	case xproto.MotionNotifyEvent:
		return in.printf("motion %d %d", e.RootX, e.RootY)
	case xproto.ButtonPressEvent:
		if name, ok := wheel[e.Detail]; ok {
			return in.printf("wheel %s", name)
		}
		if err := in.printf("button %d down %d %d", e.Detail, e.RootX, e.RootY); err != nil {
			return err
		}
		if e.Detail > 3 {
			return nil // side buttons are not clicks either
		}
		in.white = !in.white
		if err := in.paint(); err != nil {
			return err
		}
		colour := colourInputStart
		if in.white {
			colour = colourInputToggled
		}
		return in.printf("colour #%06x", colour)
	case xproto.ButtonReleaseEvent:
		if _, ok := wheel[e.Detail]; ok {
			return nil // a wheel step is a press and a release; one line is enough
		}
		return in.printf("button %d up %d %d", e.Detail, e.RootX, e.RootY)
	case xproto.KeyPressEvent:
		if err := in.printf("key down %d %s", e.Detail, keysymName(in.keys.get(e.Detail, 0))); err != nil {
			return err
		}
		if e.State&(xproto.ModMaskControl|xproto.ModMask1) != 0 {
			return nil
		}
		if r, ok := in.keys.text(e.Detail, e.State); ok {
			return in.printf("text %c", r)
		}
		return nil
	case xproto.KeyReleaseEvent:
		return in.printf("key up %d %s", e.Detail, keysymName(in.keys.get(e.Detail, 0)))
	case xproto.MappingNotifyEvent:
		// xdotool remaps a spare keycode to type a character the keyboard
		// lacks; the keys that follow need the new mapping.
		if e.Request == xproto.MappingKeyboard {
			return in.keys.load(in.conn)
		}
	}
	return nil
}

var wheel = map[xproto.Button]string{4: "up", 5: "down", 6: "left", 7: "right"}

// keymap is the server's keyboard mapping: keysyms per keycode, column 0
// unshifted and column 1 shifted (the core protocol's first group).
type keymap struct {
	min     xproto.Keycode
	per     int
	keysyms []xproto.Keysym
}

func (k *keymap) load(conn *xgb.Conn) error {
	setup := xproto.Setup(conn)
	count := int(setup.MaxKeycode) - int(setup.MinKeycode) + 1
	reply, err := xproto.GetKeyboardMapping(conn, setup.MinKeycode, byte(count)).Reply()
	if err != nil {
		return fmt.Errorf("get keyboard mapping: %w", err)
	}
	k.min, k.per, k.keysyms = setup.MinKeycode, int(reply.KeysymsPerKeycode), reply.Keysyms
	return nil
}

func (k *keymap) get(code xproto.Keycode, col int) xproto.Keysym {
	if code < k.min || col >= k.per {
		return 0
	}
	i := int(code-k.min)*k.per + col
	if i >= len(k.keysyms) {
		return 0
	}
	return k.keysyms[i]
}

// text returns the character the key types in modifier state, following
// the core protocol's rules for the first group: Shift picks column 1;
// Caps Lock flips the case of letters only; a key whose column 1 is empty
// types its column 0 keysym, upper-cased for a letter when shifted.
func (k *keymap) text(code xproto.Keycode, state uint16) (rune, bool) {
	base, shifted := k.get(code, 0), k.get(code, 1)
	r, ok := keysymRune(base)
	if !ok {
		return 0, false
	}
	shift := state&xproto.ModMaskShift != 0
	if unicode.IsLetter(r) && unicode.ToUpper(r) != unicode.ToLower(r) {
		if state&xproto.ModMaskLock != 0 {
			shift = !shift
		}
		if shifted == 0 {
			if shift {
				return unicode.ToUpper(r), true
			}
			return unicode.ToLower(r), true
		}
	}
	if shift && shifted != 0 {
		return keysymRune(shifted)
	}
	return r, true
}

// keysymRune returns the printable character of a keysym: Latin-1 keysyms
// are their own code points and Unicode keysyms carry one plus 0x01000000.
func keysymRune(ks xproto.Keysym) (rune, bool) {
	switch {
	case ks >= 0x20 && ks <= 0x7e, ks >= 0xa0 && ks <= 0xff:
		return rune(ks), true
	case ks >= 0x01000100 && ks <= 0x0110ffff:
		r := rune(ks - 0x01000000)
		return r, unicode.IsPrint(r)
	}
	return 0, false
}

func keysymName(ks xproto.Keysym) string {
	if ks == 0 {
		return "NoSymbol"
	}
	if n, ok := keysymNames[ks]; ok {
		return n
	}
	if ks >= '0' && ks <= '9' || ks >= 'A' && ks <= 'Z' || ks >= 'a' && ks <= 'z' {
		return string(rune(ks))
	}
	if ks >= 0xffbe && ks <= 0xffe0 { // F1 ... F35
		return fmt.Sprintf("F%d", ks-0xffbe+1)
	}
	return fmt.Sprintf("0x%x", uint32(ks))
}

// keysymNames names the keysyms tests type, as X11/keysymdef.h does.
var keysymNames = map[xproto.Keysym]string{
	0x20: "space", 0x21: "exclam", 0x22: "quotedbl", 0x23: "numbersign", 0x24: "dollar",
	0x25: "percent", 0x26: "ampersand", 0x27: "apostrophe", 0x28: "parenleft", 0x29: "parenright",
	0x2a: "asterisk", 0x2b: "plus", 0x2c: "comma", 0x2d: "minus", 0x2e: "period", 0x2f: "slash",
	0x3a: "colon", 0x3b: "semicolon", 0x3c: "less", 0x3d: "equal", 0x3e: "greater", 0x3f: "question",
	0x40: "at", 0x5b: "bracketleft", 0x5c: "backslash", 0x5d: "bracketright", 0x5e: "asciicircum",
	0x5f: "underscore", 0x60: "grave", 0x7b: "braceleft", 0x7c: "bar", 0x7d: "braceright", 0x7e: "asciitilde",

	0xff08: "BackSpace", 0xff09: "Tab", 0xff0d: "Return", 0xff13: "Pause", 0xff14: "Scroll_Lock",
	0xff1b: "Escape", 0xffff: "Delete", 0xff50: "Home", 0xff51: "Left", 0xff52: "Up", 0xff53: "Right",
	0xff54: "Down", 0xff55: "Prior", 0xff56: "Next", 0xff57: "End", 0xff61: "Print", 0xff63: "Insert",
	0xff67: "Menu", 0xff7f: "Num_Lock", 0xff8d: "KP_Enter", 0xfe03: "ISO_Level3_Shift", 0xfe20: "ISO_Left_Tab",
	0xffe1: "Shift_L", 0xffe2: "Shift_R", 0xffe3: "Control_L", 0xffe4: "Control_R", 0xffe5: "Caps_Lock",
	0xffe7: "Meta_L", 0xffe8: "Meta_R", 0xffe9: "Alt_L", 0xffea: "Alt_R", 0xffeb: "Super_L", 0xffec: "Super_R",
}
