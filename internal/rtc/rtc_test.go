package rtc

import (
	"fmt"
	"net"
	"regexp"
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

// TestTCPCandidate: the broker announces its TCP port for media next to
// its UDP port, at the same address: the public one, when the broker is
// reached through 1:1 NAT (here 127.0.0.2, reached through 127.0.0.1).
func TestTCPCandidate(t *testing.T) {
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpPort := udp.LocalAddr().(*net.UDPAddr).Port
	udp.Close()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api, err := NewAPI(Config{UDPPort: udpPort, TCPListener: tcp, PublicIP: "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	pc, err := api.NewPeerConnection(Sending{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, _, err := DataChannels(pc); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	sdp, err := GatherComplete(pc, offer)
	if err != nil {
		t.Fatal(err)
	}
	tcpPort := tcp.Addr().(*net.TCPAddr).Port
	for _, want := range []string{
		fmt.Sprintf(`(?m)^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.2 %d typ host`, udpPort),
		fmt.Sprintf(`(?m)^a=candidate:\S+ 1 tcp \d+ 127\.0\.0\.2 %d typ host tcptype passive`, tcpPort),
	} {
		if !regexp.MustCompile(want).MatchString(sdp) {
			t.Errorf("no candidate %q in the offer:\n%s", want, sdp)
		}
	}
}
