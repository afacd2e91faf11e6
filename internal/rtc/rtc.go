// Package rtc holds the WebRTC setup shared by the broker, the host and the
// viewer: one codec (VP8), the RTCP feedback and interceptors it needs, the
// playout-delay extension that keeps browsers from buffering video, and the
// ICE configuration (one muxed UDP port on the broker, ICE-TCP on its HTTPS
// port for peers whose network drops UDP, loopback allowed).
package rtc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/protocol"
)

// VP8 is the one video codec every peer negotiates.
var VP8 = webrtc.RTPCodecCapability{
	MimeType:  webrtc.MimeTypeVP8,
	ClockRate: 90000,
	RTCPFeedback: []webrtc.RTCPFeedback{
		{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"},
		{Type: "goog-remb"}, {Type: "transport-cc"},
	},
}

// vp8PayloadType is fixed so that the broker can forward the host's RTP to
// viewers without rewriting more than it must.
const vp8PayloadType = 96

// socketBuffer is the UDP socket buffer size: the kernel default (208 KiB)
// overflows under a keyframe burst and halves data-channel throughput.
const socketBuffer = 4 << 20

// maxNacks is how many times a lost video packet is asked for again.
const maxNacks = 2

// sctpReceiveBuffer is the data-channel receive window, which bounds what a
// sender has in flight. pion queues received packets in two 1 MB buffers
// (ICE, then DTLS) before SCTP reads them and drops what does not fit; a
// window above that lets a burst overflow them, and each loss the sender
// does not repair fast costs a one-second retransmission timeout. The
// ICE buffer also carries video, hence the room left below 1 MB.
const sctpReceiveBuffer = 768 << 10

// A peer that has heard nothing from the other for iceDisconnected (a
// frozen computer, a network cut off) calls the connection disconnected:
// the broker then tells the technician the user's computer is not
// responding and stops passing input on to it. Each end checks the link
// every iceKeepalive, and the other answers, so that a healthy link that
// carries nothing else (a still screen sends no video) hears from the
// other end a few times within iceDisconnected and a late packet or two
// does not make it flap. iceFailed later still, the connection has failed
// and the session ends: 30 s of silence in all, as long as before the
// first two were shortened, so that a computer frozen for a few seconds
// carries on.
const (
	iceDisconnected = 2 * time.Second
	iceKeepalive    = 500 * time.Millisecond
	iceFailed       = 28 * time.Second
)

// udpHeadStart is how long a peer waits before it picks the path to the
// other: every candidate pair is checked at once, and an
// ICE-TCP check that answers before a UDP one (a UDP check lost or slowed
// on a loaded link) would otherwise carry the media over TCP for the whole
// session where UDP, the lower latency under loss, gets through. It spans
// one repeat of the checks (every 200 ms), and adds as much to a connection.
const udpHeadStart = 300 * time.Millisecond

// MaxMessage is the largest data-channel message a peer accepts: the
// largest message of the protocol, a directory listing.
const MaxMessage = protocol.MaxFileMessage

// Config selects how a peer's ICE agent gathers candidates.
type Config struct {
	// UDPPort, when non-zero, muxes every PeerConnection onto this one UDP
	// port (the broker). Zero lets each PeerConnection pick its own ports
	// (hosts and viewers).
	UDPPort int
	// TCPListener, with UDPPort, yields the ICE-TCP connections of peers
	// whose network drops UDP (the broker's HTTPS port, shared): its port
	// is announced as a passive TCP candidate next to the UDP ones, which
	// ICE prefers wherever they pass. Closing the API closes it.
	TCPListener net.Listener
	// PublicIP is the address peers reach the media port by. When it is
	// not one of this machine's (a broker behind 1:1 NAT, as cloud servers
	// are), it is announced in place of the local address that reaches it.
	PublicIP string
	// PlayoutDelay stamps min = max = 0 playout delay on sent video so that
	// browsers render each frame at once instead of buffering it.
	PlayoutDelay bool
	// CongestionControl runs Google Congestion Control on the video each
	// PeerConnection sends (transport-wide feedback from the receiver),
	// which paces it and tells the PeerConnection's Sending.OnBitrate how
	// much the link carries.
	CongestionControl bool
	// MinBitrate, StartBitrate and MaxBitrate bound congestion control
	// (bits per second).
	MinBitrate, StartBitrate, MaxBitrate int
	// Logs, when set, receives pion's own log lines instead of stderr.
	Logs logging.LoggerFactory
}

// API is a configured pion API plus whatever sockets it owns.
type API struct {
	*webrtc.API
	udpMux, tcpMux io.Closer

	// mu makes one PeerConnection at a time, so that the estimator pion
	// creates inside NewPeerConnection (from a factory of the API's) gets
	// that PeerConnection's Sending.
	mu      sync.Mutex
	sending Sending
}

// Close releases the shared UDP port and TCP listener, if any.
func (a *API) Close() error {
	var errs []error
	for _, mux := range []io.Closer{a.udpMux, a.tcpMux} {
		if mux != nil {
			errs = append(errs, mux.Close())
		}
	}
	return errors.Join(errs...)
}

// Sending tunes congestion control of the video a PeerConnection sends,
// when the API runs it.
type Sending struct {
	// StartBitrate, when set, replaces the API's, bits/s.
	StartBitrate int
	// OnBitrate, when set, is called from a goroutine of its own whenever
	// the target bitrate changes, with the latest target in bits/s.
	OnBitrate func(bps int)
}

// NewPeerConnection returns a new PeerConnection whose sent video's
// congestion control, if the API runs it, is tuned by s.
func (a *API) NewPeerConnection(s Sending) (*webrtc.PeerConnection, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sending = s
	defer func() { a.sending = Sending{} }()
	return a.API.NewPeerConnection(webrtc.Configuration{})
}

// NewAPI builds the pion API for one program.
func NewAPI(cfg Config) (*API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: VP8, PayloadType: vp8PayloadType}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("register VP8: %w", err)
	}
	reg := &interceptor.Registry{}
	// A lost packet is asked for again at most twice. Without a limit each
	// one is asked for every 100 ms for as long as it is missing, and on a
	// link narrower than the video the resent packets are lost in turn: on
	// a 500 kbit/s upload the host sent fifty times what fit.
	if err := webrtc.RegisterDefaultInterceptorsWithOptions(me, reg,
		webrtc.WithNackGeneratorOptions(nack.GeneratorMaxNacksPerPacket(maxNacks))); err != nil {
		return nil, fmt.Errorf("register interceptors: %w", err)
	}
	a := &API{}
	if cfg.CongestionControl {
		if err := a.congestionControl(me, reg, cfg); err != nil {
			return nil, err
		}
	}
	if cfg.PlayoutDelay {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: PlayoutDelayURI}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("register playout-delay extension: %w", err)
		}
		reg.Add(playoutDelayFactory{})
	}

	se := webrtc.SettingEngine{}
	logs := cfg.Logs
	if logs == nil {
		logs = logging.NewDefaultLoggerFactory()
	}
	se.LoggerFactory = logs
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(iceDisconnected, iceFailed, iceKeepalive)
	se.SetIncludeLoopbackCandidate(true)
	// Whichever side picks the path (the host for its own connection, the
	// broker for each technician's) gives UDP its head start.
	se.SetHostAcceptanceMinWait(udpHeadStart)
	// Hosts and viewers also connect to the broker's TCP candidate (active
	// ICE-TCP), for when their network drops UDP.
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6, webrtc.NetworkTypeTCP4})
	if cfg.PublicIP != "" {
		rules, err := announce(cfg.PublicIP)
		if err != nil {
			return nil, err
		}
		if err := se.SetICEAddressRewriteRules(rules...); err != nil {
			return nil, fmt.Errorf("announce %s: %w", cfg.PublicIP, err)
		}
	}
	se.EnableSCTPZeroChecksum(true)
	se.SetSCTPMaxReceiveBufferSize(sctpReceiveBuffer)
	// Announced in the SDP: a peer refuses to send a larger message, and
	// one that sends it anyway loses the channel. It also keeps a message
	// below the receive window; SCTP cannot deliver one that does not fit.
	se.SetSCTPMaxMessageSize(MaxMessage)
	if cfg.UDPPort != 0 {
		mux, err := ice.NewMultiUDPMuxFromPort(cfg.UDPPort,
			ice.UDPMuxFromPortWithLoopback(),
			ice.UDPMuxFromPortWithReadBufferSize(socketBuffer),
			ice.UDPMuxFromPortWithWriteBufferSize(socketBuffer),
			ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4),
			// Container and VPN bridges announce addresses no peer can reach.
			ice.UDPMuxFromPortWithInterfaceFilter(usableInterface),
		)
		if err != nil {
			return nil, fmt.Errorf("listen for media on UDP port %d: %w", cfg.UDPPort, err)
		}
		se.SetICEUDPMux(mux)
		a.udpMux = mux
		networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
		if cfg.TCPListener != nil {
			tcpMux := ice.NewTCPMuxDefault(ice.TCPMuxParams{
				Listener: cfg.TCPListener,
				Logger:   logs.NewLogger("ice"),
				// Packets read ahead of the agent, so that a burst of video
				// does not stop reading the socket.
				ReadBufferSize: 64,
				// As the UDP socket's: a keyframe burst fits, and a peer's
				// slow link drops packets, as over UDP, instead of
				// blocking the relay that writes to it.
				WriteBufferSize: socketBuffer,
			})
			se.SetICETCPMux(tcpMux)
			a.tcpMux = tcpMux
			// Candidates on the interfaces the UDP port leaves out are no
			// more reachable over TCP.
			se.SetInterfaceFilter(usableInterface)
			// The broker only listens: users' computers take no connections.
			se.DisableActiveTCP(true)
			networks = append(networks, webrtc.NetworkTypeTCP4)
		}
		se.SetNetworkTypes(networks)
	} else {
		n, err := newBufferedNet()
		if err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
		se.SetNet(n)
		se.SetInterfaceFilter(usableInterface)
	}
	a.API = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	return a, nil
}

func usableInterface(name string) bool {
	for _, prefix := range []string{"docker", "br-", "veth", "virbr"} {
		if len(name) >= len(prefix) && name[:len(prefix)] == prefix {
			return false
		}
	}
	return true
}

// GatherComplete sets desc as the local description and waits until every
// candidate is in it, so that one offer or answer carries them all.
func GatherComplete(pc *webrtc.PeerConnection, desc webrtc.SessionDescription) (string, error) {
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("set local description: %w", err)
	}
	<-done
	local := pc.LocalDescription()
	if local == nil {
		return "", errors.New("no local description after gathering")
	}
	return local.SDP, nil
}

// announce returns the candidate rewrite for a broker reached at public:
// none when public is an address of this machine (its candidates carry it
// already), else public in place of the local address that packets to
// public leave from. pion makes one candidate per announced address, bound
// to the socket of the local address it came from, so only that address
// may be rewritten: rewriting them all to public leaves one candidate,
// bound to whichever socket came first (loopback's), where nothing sent to
// public arrives.
func announce(public string) ([]webrtc.ICEAddressRewriteRule, error) {
	ip := net.ParseIP(public)
	if ip == nil {
		return nil, fmt.Errorf("public address %q is not an IP address", public)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list network addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return nil, nil
		}
	}
	// Connecting a UDP socket picks the route and sends nothing.
	c, err := net.Dial("udp", net.JoinHostPort(public, "9"))
	if err != nil {
		return nil, fmt.Errorf("public address %s: no route to it from this machine: %w", public, err)
	}
	local := c.LocalAddr().(*net.UDPAddr).IP
	c.Close()
	return []webrtc.ICEAddressRewriteRule{{
		External:        []string{ip.String()},
		Local:           local.String(),
		AsCandidateType: webrtc.ICECandidateTypeHost,
		Mode:            webrtc.ICEAddressRewriteReplace,
	}}, nil
}

// ResolveIP turns a host name or address into an IP for candidates.
func ResolveIP(host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("resolve %q: %w", host, err)
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip.String(), nil
		}
	}
	return ips[0].String(), nil
}

// DataChannels creates the negotiated control and input channels. Every
// PeerConnection creates the same ones with the same ids, so neither side
// waits for the other to announce them.
func DataChannels(pc *webrtc.PeerConnection) (control, input *webrtc.DataChannel, err error) {
	negotiated, ordered := true, true
	id := uint16(protocol.ChannelControlID)
	control, err = pc.CreateDataChannel(protocol.ChannelControl, &webrtc.DataChannelInit{Negotiated: &negotiated, ID: &id, Ordered: &ordered})
	if err != nil {
		return nil, nil, fmt.Errorf("create control channel: %w", err)
	}
	inputID := uint16(protocol.ChannelInputID)
	input, err = pc.CreateDataChannel(protocol.ChannelInput, &webrtc.DataChannelInit{Negotiated: &negotiated, ID: &inputID, Ordered: &ordered})
	if err != nil {
		return nil, nil, fmt.Errorf("create input channel: %w", err)
	}
	return control, input, nil
}

// congestionControl adds GCC and a pacer that sends a frame at once when
// it fits the link's allowance and spreads a larger one at the target rate
// (see pacer).
func (a *API) congestionControl(me *webrtc.MediaEngine, reg *interceptor.Registry, cfg Config) error {
	// Both run inside NewPeerConnection, under a.mu.
	ccFactory, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		start := cfg.StartBitrate
		if a.sending.StartBitrate > 0 {
			start = min(max(a.sending.StartBitrate, cfg.MinBitrate), cfg.MaxBitrate)
		}
		return gcc.NewSendSideBWE(
			gcc.SendSideBWEPacer(newPacer(start)),
			gcc.SendSideBWEMinBitrate(cfg.MinBitrate),
			gcc.SendSideBWEInitialBitrate(start),
			gcc.SendSideBWEMaxBitrate(cfg.MaxBitrate),
		)
	})
	if err != nil {
		return fmt.Errorf("congestion control: %w", err)
	}
	// The estimator calls back from a new goroutine each time, so two
	// calls may arrive out of order: each passes on the latest target, not
	// the one it was given.
	ccFactory.OnNewPeerConnection(func(_ string, est cc.BandwidthEstimator) {
		if onBitrate := a.sending.OnBitrate; onBitrate != nil {
			est.OnTargetBitrateChange(func(int) { onBitrate(est.GetTargetBitrate()) })
		}
	})
	reg.Add(ccFactory)
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, reg); err != nil {
		return fmt.Errorf("transport-wide feedback: %w", err)
	}
	return nil
}
