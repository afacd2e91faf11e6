package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Control channel limits.
const (
	// MaxClipboard bounds clipboard text carried in one message.
	MaxClipboard = 64 << 10
	// MaxControlSize bounds one control message as encoded: the largest
	// data-channel message a browser takes (256 KiB). JSON writes a
	// control character (an escape in a coloured log) in 6 bytes, so
	// clipboard text within MaxClipboard may still not fit: it is then
	// refused as too large, with a reason.
	MaxControlSize = MaxClipboard * 4
	// MaxDisplays bounds the displays a host may report.
	MaxDisplays = 16
	// MaxClipboardID bounds a clipboard message's id: a JavaScript
	// number holds it exactly.
	MaxClipboardID = 1<<53 - 1
)

// Control message types.
const (
	ControlClipboard        = "clipboard"         // text both ways; from the host, fetched when it answers a clipboard.request
	ControlClipboardRequest = "clipboard.request" // viewer asks for the host's clipboard (answered once, in order)
	ControlClipboardSet     = "clipboard.set"     // a viewer's text (id) is on the user's clipboard (reason: why not)
	ControlDisplays         = "displays"          // host lists its displays
	ControlDisplaySelect    = "display.select"    // viewer picks the display to share
	ControlMode             = "control"           // viewer asks for (or gives up) control; broker says what holds
	ControlInputDropped     = "input.dropped"     // broker tells a viewer its input was refused
)

// ErrControl is wrapped by every control decoding error.
var ErrControl = errors.New("invalid control message")

// Display is one monitor of the host, in virtual-screen pixels.
type Display struct {
	Index   int    `json:"index"`
	Name    string `json:"name,omitempty"`
	X       int    `json:"x"`
	Y       int    `json:"y"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Primary bool   `json:"primary,omitempty"`
}

// ControlMessage is one message on the control channel; Type says which
// fields matter.
type ControlMessage struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`     // clipboard
	Displays []Display `json:"displays,omitempty"` // displays
	Current  int       `json:"current,omitempty"`  // displays
	// ShownFrom is the RTP timestamp from which the video shows Current
	// (displays): a viewer that asked for a display of the same size as
	// the one before tells their pictures apart by it. 0 when unknown.
	ShownFrom uint32 `json:"shown_from,omitempty"`
	Index     int    `json:"index,omitempty"`   // display.select
	Enabled   bool   `json:"enabled,omitempty"` // control
	Reason    string `json:"reason,omitempty"`  // control, input.dropped
	Count     int    `json:"count,omitempty"`   // input.dropped
	// Fetched marks the host's clipboard (text, or why none) sent as the
	// answer to a clipboard.request, not because the user copied: the
	// broker gives it only to the viewer that asked.
	Fetched bool `json:"fetched,omitempty"`
	// Turn numbers each taking of control (control): the broker gives it
	// with control, and a viewer back after a reconnection asks with it to
	// take control back only if nobody has taken it since.
	Turn int `json:"turn,omitempty"`
	// ID numbers a viewer's text for the user's clipboard (clipboard),
	// and the answer to it (clipboard.set) carries it back, whether the
	// host gives it or the broker refuses the text: a viewer that sent
	// several knows which one each answer is for.
	ID int `json:"id,omitempty"`
}

// ErrControlTooLarge is wrapped by EncodeControl's error for a message
// that is over MaxControlSize once encoded.
var ErrControlTooLarge = fmt.Errorf("%w: too large once encoded", ErrControl)

// EncodeControl marshals a control message, enforcing the limits. <, >
// and & are written as they are: escaped, markup copied to the clipboard
// took three times its size.
func EncodeControl(m ControlMessage) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	data := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	if len(data) > MaxControlSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrControlTooLarge, len(data), MaxControlSize)
	}
	return data, nil
}

// DecodeControl parses and checks one control message. Unknown types
// decode without error so that receivers can skip them.
func DecodeControl(b []byte) (ControlMessage, error) {
	var m ControlMessage
	if len(b) > MaxControlSize {
		return m, fmt.Errorf("%w: %d bytes, limit %d", ErrControl, len(b), MaxControlSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return ControlMessage{}, fmt.Errorf("%w: %v", ErrControl, err)
	}
	if dec.More() {
		return ControlMessage{}, fmt.Errorf("%w: trailing data", ErrControl)
	}
	if err := m.validate(); err != nil {
		return ControlMessage{}, err
	}
	return m, nil
}

func (m *ControlMessage) validate() error {
	switch {
	case m.Type == "":
		return fmt.Errorf("%w: missing type", ErrControl)
	case len(m.Type) > MaxIDSize:
		return fmt.Errorf("%w: type too long", ErrControl)
	case len(m.Text) > MaxClipboard:
		return fmt.Errorf("%w: clipboard text is %d bytes, limit %d", ErrControl, len(m.Text), MaxClipboard)
	case !utf8.ValidString(m.Text):
		return fmt.Errorf("%w: clipboard text is not UTF-8", ErrControl)
	case len(m.Reason) > MaxTextSize:
		return fmt.Errorf("%w: reason too long", ErrControl)
	case len(m.Displays) > MaxDisplays:
		return fmt.Errorf("%w: %d displays, limit %d", ErrControl, len(m.Displays), MaxDisplays)
	case m.Index < 0 || m.Index >= MaxDisplays || m.Current < 0 || m.Current >= MaxDisplays:
		return fmt.Errorf("%w: display index out of range", ErrControl)
	case m.ID < 0 || m.ID > MaxClipboardID:
		return fmt.Errorf("%w: clipboard id out of range", ErrControl)
	}
	for _, d := range m.Displays {
		if d.Width <= 0 || d.Height <= 0 || d.Width > 16384 || d.Height > 16384 || len(d.Name) > MaxIDSize {
			return fmt.Errorf("%w: display %d is %dx%d", ErrControl, d.Index, d.Width, d.Height)
		}
	}
	return nil
}
