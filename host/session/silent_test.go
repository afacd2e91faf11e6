package session

import (
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/host/input"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
	"github.com/tether-support/tether/internal/rtc/rtctest"
	"github.com/tether-support/tether/internal/xtest"
)

// cutNet is the network of a peer whose link can be cut: once cut, none of
// its packets leave, as when a cable is pulled or Wi-Fi drops. Nothing is
// closed, so the other end hears nothing at all.
type cutNet struct {
	*stdnet.Net
	cut atomic.Bool
}

func (n *cutNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &cutConn{UDPConn: c, cut: &n.cut}, nil
}

type cutConn struct {
	transport.UDPConn
	cut *atomic.Bool
}

func (c *cutConn) Write(b []byte) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.UDPConn.Write(b)
}

func (c *cutConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.UDPConn.WriteTo(b, addr)
}

func (c *cutConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.UDPConn.WriteToUDP(b, addr)
}

func (c *cutConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (int, int, error) {
	if c.cut.Load() {
		return len(b), len(oob), nil
	}
	return c.UDPConn.WriteMsgUDP(b, oob, addr)
}

// TestInputLetGoWhenBrokerSilent: a technician holds Shift down and the
// user's link to the broker goes (no close, just silence). The user's
// computer lets go as soon as it notices the silence, not half a minute
// later when the connection is given up: the user, at their own keyboard
// meanwhile, would type capitals and select instead of click.
func TestInputLetGoWhenBrokerSilent(t *testing.T) {
	display := xtest.StartXvfb(t, 320, 240)
	t.Setenv("DISPLAY", display)
	w := xtest.StartInputWitness(t, display)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The host's side, as Run sets it up.
	api, err := rtc.NewAPI(rtc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	host, err := api.NewPeerConnection(rtc.Sending{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	hostControl, hostInput, err := rtc.DataChannels(host)
	if err != nil {
		t.Fatal(err)
	}
	r := &remote{log: log, inj: input.New(log, func() (x, y, w, h int) { return 0, 0, 320, 240 }),
		control: hostControl, allow: func(string) bool { return true }}
	t.Cleanup(r.inj.ReleaseAll)
	hostInput.OnMessage(func(m webrtc.DataChannelMessage) { r.onInput(m.Data) })
	host.OnConnectionStateChange(r.mediaChanged)

	// The broker's side, on a link the test can cut.
	std, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	link := &cutNet{Net: std}
	se := webrtc.SettingEngine{}
	se.SetNet(link)
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	broker, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	_, brokerInput, err := rtc.DataChannels(broker)
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan struct{})
	brokerInput.OnOpen(func() { close(opened) })
	rtctest.Connect(t, host, broker)
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("the input channel did not open")
	}

	shift, err := protocol.InputEvent{Kind: protocol.InputKey, Code: "ShiftLeft", Down: true}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := brokerInput.Send(shift); err != nil {
		t.Fatal(err)
	}
	w.Wait(t, `^key down \d+ Shift_L$`, 5*time.Second)

	link.cut.Store(true)
	// The host calls the link silent after 2 s; it fails only after 30.
	w.Wait(t, `^key up \d+ Shift_L$`, 8*time.Second)
}
