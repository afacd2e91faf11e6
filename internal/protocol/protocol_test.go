package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		typ     string
		payload validator
		empty   func() validator
	}{
		{TypeHello, &Hello{Version: Version, Role: RoleHost, Code: "123456789", Host: &HostInfo{Hostname: "pc-42", OS: "linux", Width: 1920, Height: 1080, Capture: "xshm", FilesRoot: "~", FilesInbox: "~/Downloads/Tether"}}, func() validator { return &Hello{} }},
		{TypeHello, &Hello{Version: Version, Role: RoleViewer, Session: "s_abc"}, func() validator { return &Hello{} }},
		{TypeWelcome, &Welcome{Session: "s_abc", State: "waiting"}, func() validator { return &Welcome{} }},
		{TypeHello, &Hello{Version: Version, Role: RoleHost, NewCode: true, Host: &HostInfo{Hostname: "pc-42", OS: "linux", Width: 800, Height: 600}}, func() validator { return &Hello{} }},
		{TypeCode, &IssuedCode{Code: "123456789", ExpiresAt: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}, func() validator { return &IssuedCode{} }},
		{TypeOffer, &SDP{SDP: "v=0\r\n"}, func() validator { return &SDP{} }},
		{TypeAnswer, &SDP{SDP: "v=0\r\n"}, func() validator { return &SDP{} }},
		{TypeState, &State{State: "active", Host: &HostInfo{Hostname: "h", Width: 1280, Height: 720}}, func() validator { return &State{} }},
		{TypeEnd, &End{Reason: "done"}, func() validator { return &End{} }},
		{TypeEnded, &Ended{Reason: "the technician ended the session", Scope: ScopeSession}, func() validator { return &Ended{} }},
		{TypeEnded, &Ended{Reason: "The API key you connected with was revoked.", Scope: ScopeConnection}, func() validator { return &Ended{} }},
		{TypeError, &ErrorPayload{Code: CodeInvalidCode, Message: "That code is not valid."}, func() validator { return &ErrorPayload{} }},
		{TypeConsentRequest, &ConsentRequest{ID: "c_1", Viewer: Person{ID: "v_1", Name: "dana", Role: "technician", Org: "Acme IT"}, Ticket: "INC-1", Permissions: []string{PermView, PermControl}, TimeoutSeconds: 60}, func() validator { return &ConsentRequest{} }},
		{TypeConsentAnswer, &ConsentAnswer{ID: "c_1", Granted: []string{PermView}, Reason: "granted"}, func() validator { return &ConsentAnswer{} }},
		{TypeConsentState, &ConsentState{Grants: []Grant{{Viewer: "v_1", Granted: []string{PermView}}}, Paused: true, Change: "paused"}, func() validator { return &ConsentState{} }},
		{TypePermissions, &Permissions{Granted: []string{PermView, PermClipboard}, Pending: false, Message: "The user allowed view, clipboard."}, func() validator { return &Permissions{} }},
		{TypePermissionRequest, &PermissionRequest{Permissions: []string{PermShell}}, func() validator { return &PermissionRequest{} }},
		{TypeViewerLeft, &ViewerLeft{Viewer: "v_1"}, func() validator { return &ViewerLeft{} }},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			data, err := Encode(tt.typ, "s_abc", tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			env, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if env.Type != tt.typ || env.Session != "s_abc" || env.V != Version {
				t.Fatalf("envelope = %+v", env)
			}
			got := tt.empty()
			if err := DecodePayload(env, got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.payload) {
				t.Fatalf("got %+v, want %+v", got, tt.payload)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"oversized", `{"v":1,"type":"offer","payload":{"sdp":"` + strings.Repeat("a", MaxMessageSize) + `"}}`, ErrTooLarge},
		{"not json", `{"v":1,"type":`, ErrMalformed},
		{"trailing", `{"v":1,"type":"x"} {}`, ErrMalformed},
		{"no type", `{"v":1}`, ErrMalformed},
		{"old version", `{"v":0,"type":"hello"}`, ErrVersion},
		{"future version", `{"v":2,"type":"hello"}`, ErrVersion},
		{"long type", `{"v":1,"type":"` + strings.Repeat("t", MaxIDSize+1) + `"}`, ErrFieldLimit},
		{"wrong shape", `{"v":"1","type":"hello"}`, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode([]byte(tt.in)); !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestUnknownTypeDecodes(t *testing.T) {
	// Forward compatibility: a newer peer's message type decodes so that the
	// receiver can skip it.
	env, err := Decode([]byte(`{"v":1,"type":"future.thing","payload":{"x":1}}`))
	if err != nil || env.Type != "future.thing" {
		t.Fatalf("env = %+v, err = %v", env, err)
	}
}

func TestPayloadLimits(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		payload any
		into    validator
		want    error
	}{
		{"sdp too large", TypeOffer, SDP{SDP: strings.Repeat("a", MaxSDPSize+1)}, &SDP{}, ErrFieldLimit},
		{"empty sdp", TypeOffer, SDP{}, &SDP{}, ErrMalformed},
		{"hello bad role", TypeHello, Hello{Version: Version, Role: "admin"}, &Hello{}, ErrMalformed},
		{"hello bad version", TypeHello, Hello{Version: 9, Role: RoleHost}, &Hello{}, ErrVersion},
		{"hello code and new code", TypeHello, Hello{Version: Version, Role: RoleHost, Code: "123456789", NewCode: true}, &Hello{}, ErrMalformed},
		{"viewer asks for code", TypeHello, Hello{Version: Version, Role: RoleViewer, NewCode: true}, &Hello{}, ErrMalformed},
		{"code empty", TypeCode, IssuedCode{}, &IssuedCode{}, ErrMalformed},
		{"hello long code", TypeHello, Hello{Version: Version, Role: RoleHost, Code: strings.Repeat("1", MaxIDSize+1)}, &Hello{}, ErrFieldLimit},
		{"hello long shared folder", TypeHello, Hello{Version: Version, Role: RoleHost, Code: "123456789", Host: &HostInfo{FilesRoot: strings.Repeat("d", MaxTextSize+1)}}, &Hello{}, ErrFieldLimit},
		{"hello absurd size", TypeHello, Hello{Version: Version, Role: RoleHost, Host: &HostInfo{Width: -1}}, &Hello{}, ErrMalformed},
		{"reason too long", TypeEnd, End{Reason: strings.Repeat("r", MaxTextSize+1)}, &End{}, ErrFieldLimit},
		{"unknown permission", TypePermissionRequest, PermissionRequest{Permissions: []string{"root"}}, &PermissionRequest{}, ErrPermission},
		{"repeated permission", TypeConsentAnswer, ConsentAnswer{ID: "c", Granted: []string{"view", "view"}}, &ConsentAnswer{}, ErrPermission},
		{"empty request", TypeConsentRequest, ConsentRequest{ID: "c", TimeoutSeconds: 60}, &ConsentRequest{}, ErrPermission},
		{"absurd timeout", TypeConsentRequest, ConsentRequest{ID: "c", Permissions: []string{"view"}, TimeoutSeconds: 0}, &ConsentRequest{}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := Encode(tt.typ, "", tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			env, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := DecodePayload(env, tt.into); !errors.Is(err, tt.want) {
				t.Fatalf("DecodePayload error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMissingPayload(t *testing.T) {
	env, err := Decode([]byte(`{"v":1,"type":"offer"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := DecodePayload(env, &SDP{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
}

func TestEncodeRefusesOversized(t *testing.T) {
	if _, err := Encode(TypeOffer, "", SDP{SDP: strings.Repeat("a", MaxMessageSize)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

// FuzzDecode feeds arbitrary bytes to every decoder: none may panic, and
// whatever decodes must encode again.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"type":"hello","payload":{"version":1,"role":"host","code":"123456789"}}`))
	f.Add([]byte(`{"v":1,"type":"offer","payload":{"sdp":"v=0"}}`))
	f.Add([]byte(`{"v":1,"type":"state","payload":{"state":"active","host":{"width":1,"height":2}}}`))
	f.Add([]byte(`{"v":1,"type":"error","payload":{"code":"x","message":"y"}}`))
	f.Add([]byte(`{"v":1,"type":"consent.answer","payload":{"id":"c","granted":["view"],"reason":"granted"}}`))
	f.Add([]byte(`{"v":1,"type":"consent.state","payload":{"grants":[{"viewer":"v","granted":["control"]}],"paused":true}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := Decode(data)
		if err != nil {
			return
		}
		for _, v := range []validator{&Hello{}, &Welcome{}, &SDP{}, &State{}, &End{}, &Ended{}, &ErrorPayload{},
			&ConsentRequest{}, &ConsentAnswer{}, &ConsentState{}, &Permissions{}, &PermissionRequest{}, &ViewerLeft{}} {
			if DecodePayload(env, v) == nil {
				if _, err := Encode(env.Type, env.Session, v); err != nil && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("decoded %T does not encode: %v", v, err)
				}
			}
		}
	})
}
