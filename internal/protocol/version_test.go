package protocol

import (
	"errors"
	"testing"
)

// TestOtherVersionReadable: a message of another version is refused with
// its version kept, and an error written in that version decodes for a
// peer of it.
func TestOtherVersionReadable(t *testing.T) {
	env, err := Decode([]byte(`{"v":7,"type":"hello","payload":{"version":7}}`))
	if !errors.Is(err, ErrVersion) || env.V != 7 {
		t.Fatalf("Decode = %+v, %v; want version 7 kept with ErrVersion", env, err)
	}
	data, err := EncodeError(Version, "s_1", ErrorPayload{Code: CodeVersion, Message: "Update."})
	if err != nil {
		t.Fatal(err)
	}
	env, err = Decode(data)
	if err != nil || env.Type != TypeError || env.Session != "s_1" {
		t.Fatalf("Decode(EncodeError) = %+v, %v", env, err)
	}
	var e ErrorPayload
	if err := DecodePayload(env, &e); err != nil || e.Code != CodeVersion || e.Message != "Update." {
		t.Fatalf("payload %+v, %v", e, err)
	}
	if data, _ := EncodeError(7, "", ErrorPayload{Code: CodeVersion}); string(data) != `{"v":7,"type":"error","payload":{"code":"unsupported_version","message":""}}` {
		t.Fatalf("EncodeError(7) = %s", data)
	}
}
