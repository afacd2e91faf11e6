package e2e

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestIceTCP: a user whose network lets no UDP through (a corporate
// firewall) still gets a session: the host's media reaches the broker over
// TCP, on the port its web pages and signaling already use. Where UDP
// passes, media keeps to UDP, which has the lower latency.
func TestIceTCP(t *testing.T) {
	for _, blocked := range []bool{true, false} {
		name := "UDP open"
		if blocked {
			name = "UDP blocked"
		}
		t.Run(name, func(t *testing.T) {
			l := newLink(t, true)
			fw := newFirewall(t, l, blocked)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// Fails with "no video" when media finds no way through.
			_, _, j := shapedSession(t, ctx, l)

			time.Sleep(2 * time.Second) // the video settles
			f0 := j.Frames()
			udp0, tcp0 := fw.sent(t)
			time.Sleep(5 * time.Second)
			udp1, tcp1 := fw.sent(t)
			frames, udp, tcp := j.Frames()-f0, udp1.bytes-udp0.bytes, tcp1.bytes-tcp0.bytes
			t.Logf("in 5 s the technician received %d frames; the host sent %d bytes over UDP and %d over TCP; %d UDP packets in all", frames, udp, tcp, udp1.packets)
			if frames == 0 {
				t.Fatal("the video stopped")
			}
			if blocked {
				if udp1.packets == 0 {
					t.Error("the host sent no UDP: the test's firewall did not stand in its way")
				}
				if tcp < 10*udp {
					t.Errorf("with UDP blocked, the video did not go over TCP (%d bytes over TCP, %d over UDP)", tcp, udp)
				}
			} else if udp < 10*tcp {
				t.Errorf("with UDP open, the video did not go over UDP (%d bytes over UDP, %d over TCP)", udp, tcp)
			}
		})
	}
}

// firewall counts what the user's computer sends over the link, UDP and
// TCP, and drops UDP both ways when blocking.
type firewall struct {
	l *link
}

// newFirewall sets up the far end of l, which must be the user's side.
func newFirewall(t *testing.T, l *link, blockUDP bool) firewall {
	t.Helper()
	if !l.inNS {
		t.Fatal("the firewall stands on the user's side of the link")
	}
	drop := []string{}
	if blockUDP {
		drop = []string{"drop"}
	}
	// The namespace takes the table with it.
	for _, args := range [][]string{
		{"add", "table", "inet", "tether_fw"},
		{"add", "chain", "inet", "tether_fw", "out", "{ type filter hook output priority 0; }"},
		append([]string{"add", "rule", "inet", "tether_fw", "out", "oifname", l.dev, "meta", "l4proto", "udp", "counter"}, drop...),
		{"add", "rule", "inet", "tether_fw", "out", "oifname", l.dev, "meta", "l4proto", "tcp", "counter"},
		{"add", "chain", "inet", "tether_fw", "in", "{ type filter hook input priority 0; }"},
		append([]string{"add", "rule", "inet", "tether_fw", "in", "iifname", l.dev, "meta", "l4proto", "udp", "counter"}, drop...),
	} {
		if out, err := l.command("nft", args...).CombinedOutput(); err != nil {
			// A kernel without nf_tables cannot filter packets this way.
			t.Skipf("this machine cannot filter packets: nft %v: %v\n%s", args, err, out)
		}
	}
	return firewall{l: l}
}

type counter struct{ packets, bytes int64 }

var nftCounter = regexp.MustCompile(`l4proto (udp|tcp) counter packets (\d+) bytes (\d+)`)

// sent reads what the user's computer has sent so far over UDP (dropped
// or not) and TCP.
func (fw firewall) sent(t *testing.T) (udp, tcp counter) {
	t.Helper()
	out, err := fw.l.command("nft", "list", "chain", "inet", "tether_fw", "out").CombinedOutput()
	if err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	for _, m := range nftCounter.FindAllStringSubmatch(string(out), -1) {
		packets, _ := strconv.ParseInt(m[2], 10, 64)
		bytes, _ := strconv.ParseInt(m[3], 10, 64)
		if m[1] == "udp" {
			udp = counter{packets, bytes}
		} else {
			tcp = counter{packets, bytes}
		}
	}
	return udp, tcp
}
