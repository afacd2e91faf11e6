package signal

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-support/tether/internal/protocol"
)

const (
	writeTimeout = 5 * time.Second
	helloTimeout = 10 * time.Second
	pongTimeout  = 60 * time.Second
	pingEvery    = 20 * time.Second
	// hardReadLimit closes a connection that sends a message this big;
	// anything between protocol.MaxMessageSize and this is read off the
	// wire, refused with an error message, and the connection goes on.
	hardReadLimit = 1 << 20
)

// Close codes sent to peers; the close reason is a human sentence.
const (
	closeEnded    = websocket.CloseNormalClosure
	closeRefused  = 4003 // the hello was refused: bad code, not allowed
	closeShutdown = websocket.CloseGoingAway
)

// conn is one peer's signaling WebSocket. Writes are serialised; reads
// happen on the goroutine that serves the peer.
type conn struct {
	ws      *websocket.Conn
	writeMu sync.Mutex
	done    chan struct{}
	once    sync.Once
}

func newConn(ws *websocket.Conn) *conn {
	ws.SetReadLimit(hardReadLimit)
	ws.SetPongHandler(func(string) error {
		return ws.SetReadDeadline(time.Now().Add(pongTimeout))
	})
	return &conn{ws: ws, done: make(chan struct{})}
}

// send writes one message.
func (c *conn) send(typ, session string, payload any) error {
	data, err := protocol.Encode(typ, session, payload)
	if err != nil {
		return err
	}
	return c.write(data)
}

// write writes one encoded message. A write that failed (the peer stopped
// reading and the socket filled, or the peer is gone) leaves the
// connection unable to write anything more: it is closed, so that the
// peer's reader ends with it rather than listening to a connection that
// tells it nothing.
func (c *conn) write(data []byte) error {
	c.writeMu.Lock()
	c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := c.ws.WriteMessage(websocket.TextMessage, data)
	c.writeMu.Unlock()
	if err != nil {
		c.close(closeEnded, "")
	}
	return err
}

func (c *conn) sendError(session, code, message string) error {
	return c.send(protocol.TypeError, session, protocol.ErrorPayload{Code: code, Message: message})
}

// close sends a close frame with a reason and closes the socket.
func (c *conn) close(code int, reason string) {
	c.once.Do(func() {
		close(c.done)
		if len(reason) > 120 { // a close frame holds at most 123 bytes of reason
			reason = reason[:120]
		}
		c.writeMu.Lock()
		c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(writeTimeout))
		c.writeMu.Unlock()
		c.ws.Close()
	})
}

// keepalive pings the peer until the connection closes, so that a peer
// that vanished without closing is noticed within pongTimeout.
func (c *conn) keepalive() {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.writeMu.Lock()
			err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout))
			c.writeMu.Unlock()
			if err != nil {
				c.close(closeEnded, "") // as in write
				return
			}
		}
	}
}

// errTooLarge marks a message that was refused for its size; the
// connection is still usable.
var errTooLarge = errors.New("message too large")

// read returns the next message. Messages over protocol.MaxMessageSize are
// drained and refused without being held in memory.
func (c *conn) read() (protocol.Envelope, error) {
	typ, r, err := c.ws.NextReader()
	if err != nil {
		return protocol.Envelope{}, err
	}
	if typ != websocket.TextMessage {
		io.Copy(io.Discard, r)
		return protocol.Envelope{}, fmt.Errorf("%w: binary frame", protocol.ErrMalformed)
	}
	data, err := io.ReadAll(io.LimitReader(r, protocol.MaxMessageSize+1))
	if err != nil {
		return protocol.Envelope{}, err
	}
	if len(data) > protocol.MaxMessageSize {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return protocol.Envelope{}, err
		}
		return protocol.Envelope{}, fmt.Errorf("%w: limit is %d bytes", errTooLarge, protocol.MaxMessageSize)
	}
	return protocol.Decode(data)
}

// readErrorIsFatal sorts read errors: a bad message fails that message;
// anything else is the end of the connection.
func readErrorIsFatal(err error) bool {
	return !(errors.Is(err, errTooLarge) || errors.Is(err, protocol.ErrMalformed) ||
		errors.Is(err, protocol.ErrVersion) || errors.Is(err, protocol.ErrFieldLimit))
}

// reportReadError tells the peer why its message was refused.
func (c *conn) reportReadError(session string, err error) {
	code := protocol.CodeBadMessage
	if errors.Is(err, errTooLarge) {
		code = protocol.CodeTooLarge
	} else if errors.Is(err, protocol.ErrVersion) {
		code = protocol.CodeVersion
	}
	c.sendError(session, code, "Message refused: "+err.Error())
}
