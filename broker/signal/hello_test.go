package signal

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tether-support/tether/internal/protocol"
)

// TestHelloOtherVersion: a host or viewer of another protocol version is
// refused with the version error code, in an envelope of its own version
// (which it can read: error payloads are the same in every version), and
// with a sentence that tells its user what to do.
func TestHelloOtherVersion(t *testing.T) {
	b := newTestHub(t)
	cookie := b.login("alice", "technician")
	viewerHeader := http.Header{"Origin": {b.origin()}, "Cookie": {cookie.String()}}
	for _, tc := range []struct {
		name       string
		path       string
		header     http.Header
		v, hello   int
		role, want string
	}{
		{"newer host", "/ws/host", nil, protocol.Version + 1, protocol.Version + 1, "host", "newer"},
		{"older host", "/ws/host", nil, protocol.Version - 1, protocol.Version - 1, "host", "older"},
		{"host whose hello alone is newer", "/ws/host", nil, protocol.Version, protocol.Version + 1, "host", "newer"},
		{"newer viewer", "/ws/viewer", viewerHeader, protocol.Version + 1, protocol.Version + 1, "viewer", "newer"},
		{"older viewer", "/ws/viewer", viewerHeader, protocol.Version, protocol.Version - 1, "viewer", "older"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := b.dial(tc.path, tc.header)
			sendRaw(t, ws, fmt.Sprintf(`{"v":%d,"type":"hello","payload":{"version":%d,"role":%q,"code":"123456789"}}`, tc.v, tc.hello, tc.role))
			v, e := readError(t, ws)
			if e.Code != protocol.CodeVersion {
				t.Errorf("error code %q (%s), want %q", e.Code, e.Message, protocol.CodeVersion)
			}
			if v != tc.v {
				t.Errorf("the refusal came in an envelope of version %d: a peer of version %d cannot read it", v, tc.v)
			}
			if !strings.Contains(e.Message, tc.want) || strings.Contains(e.Message, "want") {
				t.Errorf("message %q does not tell the user their program is %s than the broker", e.Message, tc.want)
			}
		})
	}
}

// TestWaitingHostToldOfBadMessage: a host waiting for a technician to
// claim its code hears why a message of its was refused, as it does in a
// session, and goes on waiting.
func TestWaitingHostToldOfBadMessage(t *testing.T) {
	b := newTestHub(t)
	ws := b.dial("/ws/host", nil)
	sendRaw(t, ws, `{"v":1,"type":"hello","payload":{"version":1,"role":"host","new_code":true}}`)
	if env := readRaw(t, ws); env.Type != protocol.TypeCode {
		t.Fatalf("got %q, want a code", env.Type)
	}
	for _, tc := range []struct{ msg, code string }{
		{"not json", protocol.CodeBadMessage},
		{`{"v":1,"type":"end","payload":` + strings.Repeat(" ", protocol.MaxMessageSize) + `{}}`, protocol.CodeTooLarge},
		{`{"v":1,"type":"some.future.type","payload":{}}`, ""}, // skipped
	} {
		sendRaw(t, ws, tc.msg)
		if tc.code == "" {
			continue
		}
		if _, e := readError(t, ws); e.Code != tc.code {
			t.Errorf("%.20s…: error %q (%s), want %q", tc.msg, e.Code, e.Message, tc.code)
		}
	}
}

// TestHelloTooLarge: a hello over the size limit is refused as too large,
// as any message is, not as a malformed one.
func TestHelloTooLarge(t *testing.T) {
	b := newTestHub(t)
	ws := b.dial("/ws/host", nil)
	sendRaw(t, ws, `{"v":1,"type":"hello","payload":{"version":1,"role":"host","code":"123456789"}}`+strings.Repeat(" ", protocol.MaxMessageSize))
	if _, e := readError(t, ws); e.Code != protocol.CodeTooLarge {
		t.Errorf("error %q (%s), want %q", e.Code, e.Message, protocol.CodeTooLarge)
	}
}
