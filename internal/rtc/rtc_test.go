package rtc

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestAnnounce(t *testing.T) {
	// The machine's own address: its candidates carry it already.
	if rules, err := announce("127.0.0.1"); err != nil || rules != nil {
		t.Fatalf("own address: rules %v, err %v; want none", rules, err)
	}
	// An address reached through another (1:1 NAT): only the local
	// address that reaches it is rewritten.
	rules, err := announce("127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 || rules[0].Local != "127.0.0.1" || len(rules[0].External) != 1 || rules[0].External[0] != "127.0.0.2" ||
		rules[0].AsCandidateType != webrtc.ICECandidateTypeHost || rules[0].Mode != webrtc.ICEAddressRewriteReplace {
		t.Fatalf("rules for 127.0.0.2: %+v; want 127.0.0.1 replaced by 127.0.0.2 in host candidates", rules)
	}
	if _, err := announce("support.example.com"); err == nil {
		t.Fatal("a host name was taken as an address")
	}
}
