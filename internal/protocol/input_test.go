package protocol

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestInputRoundTrip(t *testing.T) {
	for _, e := range []InputEvent{
		{Kind: InputMove, X: 0, Y: 0},
		{Kind: InputMove, X: 1919, Y: 1079},
		{Kind: InputButton, Button: ButtonRight, Down: true, X: 640, Y: 360},
		{Kind: InputButton, Button: ButtonLeft, Down: false, X: 1, Y: 2},
		{Kind: InputWheel, DX: -3, DY: 5},
		{Kind: InputKey, Down: true, Code: "ShiftLeft"},
		{Kind: InputKey, Down: false, Code: "KeyA"},
		{Kind: InputText, Text: "é€😀"},
		{Kind: InputReleaseAll},
	} {
		b, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		got, err := DecodeInput(b)
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		if got != e {
			t.Fatalf("got %+v, want %+v", got, e)
		}
	}
}

func TestInputRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":             {},
		"oversized":         append([]byte{InputText, 70}, []byte(strings.Repeat("a", 90))...),
		"unknown kind":      {99},
		"short move":        {InputMove, 0, 1},
		"long move":         {InputMove, 0, 1, 0, 1, 9},
		"bad button":        {InputButton, 9, 1, 0, 0, 0, 0},
		"bad down":          {InputButton, 0, 2, 0, 0, 0, 0},
		"huge wheel":        {InputWheel, 0x7f, 0xff, 0, 0},
		"zero key":          {InputKey, 1, 0},
		"key len lies":      {InputKey, 1, 5, 'K', 'e'},
		"key punctuation":   {InputKey, 1, 3, 'a', ';', 'b'},
		"text len lies":     {InputText, 9, 'a'},
		"text not utf8":     {InputText, 2, 0xff, 0xfe},
		"text control":      {InputText, 1, 0x1b},
		"text DEL":          {InputText, 1, 0x7f},
		"text CSI (C1)":     {InputText, 2, 0xc2, 0x9b},
		"text NEL (C1)":     {InputText, 4, 'a', 0xc2, 0x85, 'b'},
		"release with body": {InputReleaseAll, 1},
	} {
		if _, err := DecodeInput(b); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", name, err)
		}
	}
}

func TestControlRoundTripAndLimits(t *testing.T) {
	msgs := []ControlMessage{
		{Type: ControlClipboard, Text: "hello\nworld", ID: 7},
		{Type: ControlClipboardSet, Reason: "The user's clipboard could not be set.", ID: MaxClipboardID},
		{Type: ControlClipboardRequest},
		{Type: ControlDisplays, Displays: []Display{{Index: 0, Width: 1280, Height: 1080, Primary: true}, {Index: 1, X: 1280, Width: 1280, Height: 1080}}, Current: 1},
		{Type: ControlDisplaySelect, Index: 1},
		{Type: ControlMode, Enabled: true},
		{Type: "future.thing"},
	}
	for _, m := range msgs {
		b, err := EncodeControl(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeControl(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != m.Type || got.Text != m.Text || len(got.Displays) != len(m.Displays) || got.Index != m.Index || got.Enabled != m.Enabled || got.ID != m.ID || got.Reason != m.Reason {
			t.Fatalf("got %+v, want %+v", got, m)
		}
	}
	for name, in := range map[string]string{
		"no type":       `{"text":"x"}`,
		"not json":      `{"type":`,
		"big clipboard": `{"type":"clipboard","text":"` + strings.Repeat("a", MaxClipboard+1) + `"}`,
		"huge":          strings.Repeat(" ", MaxControlSize+1),
		"bad display":   `{"type":"displays","displays":[{"index":0,"width":0,"height":5}]}`,
		"bad index":     `{"type":"display.select","index":-1}`,
		"negative id":   `{"type":"clipboard","text":"x","id":-1}`,
		"huge id":       `{"type":"clipboard","text":"x","id":9007199254740992}`,
		"fraction id":   `{"type":"clipboard","text":"x","id":1.5}`,
	} {
		if _, err := DecodeControl([]byte(in)); !errors.Is(err, ErrControl) {
			t.Errorf("%s: err = %v, want ErrControl", name, err)
		}
	}
}

// TestClipboardTextEncodes: clipboard text within MaxClipboard comes out
// of EncodeControl as a message DecodeControl takes (the broker drops
// one it cannot decode, and the technician is never told), markup and
// all; text so full of control characters that it cannot is refused by
// EncodeControl itself, for the sender to give a reason instead.
func TestClipboardTextEncodes(t *testing.T) {
	for name, text := range map[string]string{
		"an HTML table":      strings.Repeat("<tr><td>1</td><td>2</td></tr>\n", MaxClipboard/30),
		"64 KiB of <":        strings.Repeat("<", MaxClipboard),
		"a coloured log":     strings.Repeat("\x1b[31mERROR\x1b[0m disk full\n", MaxClipboard/30),
		"30 KiB of controls": strings.Repeat("\x01", 30<<10),
	} {
		data, err := EncodeControl(ControlMessage{Type: ControlClipboard, Text: text})
		if err != nil {
			t.Errorf("%s (%d bytes): %v", name, len(text), err)
			continue
		}
		if got, err := DecodeControl(data); err != nil || got.Text != text {
			t.Errorf("%s (%d bytes of text, %d encoded): %v", name, len(text), len(data), err)
		}
	}
	_, err := EncodeControl(ControlMessage{Type: ControlClipboard, Text: strings.Repeat("\x01", MaxClipboard)})
	if !errors.Is(err, ErrControlTooLarge) {
		t.Errorf("64 KiB of control characters: %v, want ErrControlTooLarge", err)
	}
}

func FuzzDecodeInput(f *testing.F) {
	for _, e := range []InputEvent{{Kind: InputMove, X: 5, Y: 6}, {Kind: InputKey, Down: true, Code: "KeyA"}, {Kind: InputText, Text: "hi"}, {Kind: InputWheel, DY: 1}} {
		b, _ := e.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeInput(b)
		if err != nil {
			return
		}
		again, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", e, err)
		}
		if string(again) != string(b) {
			t.Fatalf("re-encoded %x, read %x", again, b)
		}
	})
}

func FuzzDecodeControl(f *testing.F) {
	f.Add([]byte(`{"type":"clipboard","text":"x"}`))
	f.Add([]byte(`{"type":"displays","displays":[{"index":0,"width":10,"height":10}],"current":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeControl(b)
		if err != nil {
			return
		}
		if _, err := EncodeControl(m); err != nil {
			t.Fatalf("decoded %+v does not encode: %v", m, err)
		}
	})
}

// TestConsoleInputVectors decodes the bytes the console's encoders produce
// (web/test/input.test.mjs checks the console against the same file), so
// the two ends cannot drift apart.
func TestConsoleInputVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/console-input.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct {
		Encode []any
		Bytes  []byte
		Event  InputEvent
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) < 10 {
		t.Fatalf("%d vectors", len(vectors))
	}
	for _, v := range vectors {
		got, err := DecodeInput(v.Bytes)
		if err != nil {
			t.Fatalf("%v: %v", v.Encode, err)
		}
		if got != v.Event {
			t.Fatalf("%v decodes to %+v, want %+v", v.Encode, got, v.Event)
		}
	}
}
