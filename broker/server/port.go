package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// The broker's TCP port carries HTTPS and WSS and, for peers whose network
// lets no UDP through, WebRTC media (ICE-TCP): users' firewalls need no
// other port for it. The first bytes of a connection tell the two apart:
// ICE-TCP frames each packet with a two-byte length (RFC 4571) and starts
// with a STUN binding request, whose header carries a magic cookie (RFC
// 5389) where no TLS or HTTP client has those bytes. Everything else goes
// to the HTTPS server as before, plain HTTP included (it answers that with
// a hint to use https://).

// sniffTimeout is how long a new connection has to send its first bytes:
// as long as the HTTPS server gives a client for a request's headers.
const sniffTimeout = 10 * time.Second

// stunCookie is the magic cookie, at bytes 4-7 of every STUN message and so
// at bytes 6-9 of an ICE-TCP connection.
var stunCookie = []byte{0x21, 0x12, 0xa4, 0x42}

// sharedPort accepts the connections of the broker's TCP port and hands
// each to the HTTPS server or to ICE-TCP, through a listener of each's own.
type sharedPort struct {
	tcp   net.Listener
	https *connQueue
	ice   *connQueue
	log   *slog.Logger

	ctx    context.Context // cancelled on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and the connections being sorted
}

func newSharedPort(tcp net.Listener, log *slog.Logger) *sharedPort {
	ctx, cancel := context.WithCancel(context.Background())
	p := &sharedPort{tcp: tcp, https: newConnQueue(tcp.Addr()), ice: newConnQueue(tcp.Addr()), log: log, ctx: ctx, cancel: cancel}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.accept()
	}()
	return p
}

// Addr is the port's address.
func (p *sharedPort) Addr() net.Addr { return p.tcp.Addr() }

// Close stops accepting, drops the connections not yet sorted and closes
// both listeners.
func (p *sharedPort) Close() error {
	err := p.tcp.Close()
	p.cancel()
	p.wg.Wait()
	p.https.Close()
	p.ice.Close()
	return err
}

func (p *sharedPort) accept() {
	for {
		c, err := p.tcp.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors, say: wait for some to be freed, as
			// the HTTPS server did when it accepted for itself.
			p.log.Warn("accept a connection", "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-p.ctx.Done():
				return
			}
			continue
		}
		// Sorted apart, so that a client slow to send its first bytes
		// holds up no one else's.
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.sort(c)
		}()
	}
}

// sort reads the first bytes of c and hands it, with them, to the HTTPS
// server or to ICE-TCP. A client that sends too little in time is dropped.
func (p *sharedPort) sort(c net.Conn) {
	stop := context.AfterFunc(p.ctx, func() { c.Close() })
	defer stop()
	head := make([]byte, 10)
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	if _, err := io.ReadFull(c, head); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	q := p.https
	if bytes.Equal(head[6:10], stunCookie) {
		q = p.ice
	}
	q.put(p.ctx, &sniffedConn{Conn: c, r: io.MultiReader(bytes.NewReader(head), c)})
}

// sniffedConn is a connection whose first bytes were read to sort it; it
// reads them again first.
type sniffedConn struct {
	net.Conn
	r io.Reader
}

func (c *sniffedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// connQueue is a net.Listener whose connections sharedPort sorts to it.
type connQueue struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// put waits for the listener's user to accept c; c is closed instead when
// the listener or the port is closed first.
func (q *connQueue) put(ctx context.Context, c net.Conn) {
	select {
	case q.conns <- c:
	case <-q.closed:
		c.Close()
	case <-ctx.Done():
		c.Close()
	}
}
