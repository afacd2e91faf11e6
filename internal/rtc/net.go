package rtc

import (
	"net"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// bufferedNet is the standard network with big UDP socket buffers on every
// socket ICE opens. With the kernel default (208 KiB) a burst of
// data-channel packets overflows the receiver's socket; SCTP then waits
// out a one-second retransmission timeout and a file transfer halves.
type bufferedNet struct {
	*stdnet.Net
}

func newBufferedNet() (*bufferedNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &bufferedNet{n}, nil
}

func (n *bufferedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	// The kernel caps these at net.core.rmem_max / wmem_max; a smaller
	// buffer is still better than none, so errors are not fatal.
	c.SetReadBuffer(socketBuffer)
	c.SetWriteBuffer(socketBuffer)
	return c, nil
}
