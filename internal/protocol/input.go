package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Data channels, negotiated out of band with fixed stream ids on every
// PeerConnection (host and viewers alike), so that neither side waits for
// the other to announce them.
const (
	ChannelControl   = "control" // JSON ControlMessage values
	ChannelControlID = 0
	ChannelInput     = "input" // binary InputEvent values
	ChannelInputID   = 1
)

// Input event kinds: the first byte of every input message.
const (
	InputMove       byte = 1 // x u16, y u16
	InputButton     byte = 2 // button u8, down u8, x u16, y u16
	InputWheel      byte = 3 // dx i16, dy i16 (notches; positive is right / down)
	InputKey        byte = 4 // down u8, len u8, code [len]byte
	InputText       byte = 5 // len u8, text [len]byte (UTF-8)
	InputReleaseAll byte = 6 // no body
)

// Mouse buttons.
const (
	ButtonLeft    = 0
	ButtonMiddle  = 1
	ButtonRight   = 2
	ButtonBack    = 3
	ButtonForward = 4
)

// Input limits.
const (
	// MaxInputSize bounds one input message.
	MaxInputSize = 80
	// MaxKeyCode bounds a physical key code such as "ShiftLeft".
	MaxKeyCode = 32
	// MaxInputText bounds one text event (a few characters typed at once).
	MaxInputText = 64
	// MaxWheel bounds the notches of one wheel event.
	MaxWheel = 100
)

// ErrInput is wrapped by every input decoding error.
var ErrInput = errors.New("invalid input event")

// InputEvent is one pointer or keyboard event from a viewer. Coordinates
// are pixels of the captured display, whatever the viewer's scaling.
type InputEvent struct {
	Kind   byte
	X, Y   int    // move, button
	Button int    // button
	Down   bool   // button, key
	DX, DY int    // wheel
	Code   string // key: KeyboardEvent.code, e.g. "KeyA", "ShiftLeft"
	Text   string // text
}

// MarshalBinary encodes the event.
func (e InputEvent) MarshalBinary() ([]byte, error) {
	b := []byte{e.Kind}
	switch e.Kind {
	case InputMove:
		b = binary.BigEndian.AppendUint16(b, clampU16(e.X))
		b = binary.BigEndian.AppendUint16(b, clampU16(e.Y))
	case InputButton:
		b = append(b, byte(e.Button), boolByte(e.Down))
		b = binary.BigEndian.AppendUint16(b, clampU16(e.X))
		b = binary.BigEndian.AppendUint16(b, clampU16(e.Y))
	case InputWheel:
		b = binary.BigEndian.AppendUint16(b, uint16(int16(e.DX)))
		b = binary.BigEndian.AppendUint16(b, uint16(int16(e.DY)))
	case InputKey:
		if len(e.Code) == 0 || len(e.Code) > MaxKeyCode {
			return nil, fmt.Errorf("%w: key code of %d bytes", ErrInput, len(e.Code))
		}
		b = append(b, boolByte(e.Down), byte(len(e.Code)))
		b = append(b, e.Code...)
	case InputText:
		if len(e.Text) == 0 || len(e.Text) > MaxInputText {
			return nil, fmt.Errorf("%w: text of %d bytes", ErrInput, len(e.Text))
		}
		b = append(b, byte(len(e.Text)))
		b = append(b, e.Text...)
	case InputReleaseAll:
	default:
		return nil, fmt.Errorf("%w: unknown kind %d", ErrInput, e.Kind)
	}
	return b, nil
}

// DecodeInput parses and checks one input message.
func DecodeInput(b []byte) (InputEvent, error) {
	if len(b) == 0 || len(b) > MaxInputSize {
		return InputEvent{}, fmt.Errorf("%w: %d bytes", ErrInput, len(b))
	}
	e := InputEvent{Kind: b[0]}
	body := b[1:]
	need := func(n int) error {
		if len(body) != n {
			return fmt.Errorf("%w: kind %d needs %d bytes, got %d", ErrInput, e.Kind, n, len(body))
		}
		return nil
	}
	switch e.Kind {
	case InputMove:
		if err := need(4); err != nil {
			return InputEvent{}, err
		}
		e.X, e.Y = int(binary.BigEndian.Uint16(body)), int(binary.BigEndian.Uint16(body[2:]))
	case InputButton:
		if err := need(6); err != nil {
			return InputEvent{}, err
		}
		e.Button = int(body[0])
		if e.Button > ButtonForward || body[1] > 1 {
			return InputEvent{}, fmt.Errorf("%w: button %d, down %d", ErrInput, body[0], body[1])
		}
		e.Down = body[1] == 1
		e.X, e.Y = int(binary.BigEndian.Uint16(body[2:])), int(binary.BigEndian.Uint16(body[4:]))
	case InputWheel:
		if err := need(4); err != nil {
			return InputEvent{}, err
		}
		e.DX, e.DY = int(int16(binary.BigEndian.Uint16(body))), int(int16(binary.BigEndian.Uint16(body[2:])))
		if e.DX < -MaxWheel || e.DX > MaxWheel || e.DY < -MaxWheel || e.DY > MaxWheel {
			return InputEvent{}, fmt.Errorf("%w: wheel %d,%d", ErrInput, e.DX, e.DY)
		}
	case InputKey:
		if len(body) < 2 || body[0] > 1 {
			return InputEvent{}, fmt.Errorf("%w: short key event", ErrInput)
		}
		n := int(body[1])
		if n == 0 || n > MaxKeyCode {
			return InputEvent{}, fmt.Errorf("%w: key code of %d bytes", ErrInput, n)
		}
		if err := need(2 + n); err != nil {
			return InputEvent{}, err
		}
		e.Down = body[0] == 1
		e.Code = string(body[2:])
		for _, c := range []byte(e.Code) {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				return InputEvent{}, fmt.Errorf("%w: key code %q", ErrInput, e.Code)
			}
		}
	case InputText:
		if len(body) < 1 {
			return InputEvent{}, fmt.Errorf("%w: short text event", ErrInput)
		}
		n := int(body[0])
		if n == 0 || n > MaxInputText {
			return InputEvent{}, fmt.Errorf("%w: text of %d bytes", ErrInput, n)
		}
		if err := need(1 + n); err != nil {
			return InputEvent{}, err
		}
		e.Text = string(body[1:])
		if !utf8.ValidString(e.Text) {
			return InputEvent{}, fmt.Errorf("%w: text is not UTF-8", ErrInput)
		}
		for _, r := range e.Text {
			// C0, DEL and C1 (U+0080-U+009F: CSI, NEL...): no one types
			// them, and typing one remaps a key on the user's keyboard.
			if unicode.IsControl(r) && r != '\t' && r != '\n' {
				return InputEvent{}, fmt.Errorf("%w: control character %U in text", ErrInput, r)
			}
		}
	case InputReleaseAll:
		if err := need(0); err != nil {
			return InputEvent{}, err
		}
	default:
		return InputEvent{}, fmt.Errorf("%w: unknown kind %d", ErrInput, e.Kind)
	}
	return e, nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func clampU16(v int) uint16 {
	return uint16(min(max(v, 0), 0xffff))
}
