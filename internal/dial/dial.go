// Package dial connects the host and the viewer to the broker's signaling
// WebSocket over verified TLS, and turns connection failures into sentences
// a user can act on.
package dial

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/tether-support/tether/internal/protocol"
)

// Errors a user sees when the broker cannot be reached.
var (
	ErrUnreachable = errors.New("broker unreachable")
	ErrUntrusted   = errors.New("broker certificate not trusted")
	ErrBadURL      = errors.New("invalid broker URL")
	ErrCAFile      = errors.New("CA file")
)

// TLSConfig trusts the CA in caFile, or the system's roots when empty.
func TLSConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCAFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrCAFile, caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// TLSConfigPEM returns a client TLS configuration that trusts only the CA
// certificates in pem.
func TLSConfigPEM(pem []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the CA given holds no PEM certificate")
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

// BrokerURL parses and checks a broker address such as
// https://support.example.com:8443. A bare host:port means https.
func BrokerURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadURL)
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%w: %q must be https://HOST[:PORT]", ErrBadURL, raw)
	}
	u.Path, u.RawQuery, u.Fragment = strings.TrimSuffix(u.Path, "/"), "", ""
	return u, nil
}

// WebSocket opens the signaling WebSocket at path on the broker.
func WebSocket(ctx context.Context, broker *url.URL, path string, tlsCfg *tls.Config, header http.Header) (*websocket.Conn, error) {
	d := websocket.Dialer{
		TLSClientConfig:  tlsCfg,
		HandshakeTimeout: 10 * time.Second,
		Proxy:            http.ProxyFromEnvironment,
	}
	u := *broker
	u.Scheme = "wss"
	u.Path += path
	ws, resp, err := d.DialContext(ctx, u.String(), header)
	if err != nil {
		if resp != nil {
			switch resp.StatusCode {
			case http.StatusUnauthorized:
				if why := refusal(resp); why != "" {
					return nil, fmt.Errorf("the broker refused the credentials: %s", why)
				}
				return nil, errors.New("the broker refused the credentials: log in again or check the API key")
			case http.StatusForbidden:
				if why := refusal(resp); why != "" {
					return nil, fmt.Errorf("the broker refused the connection (forbidden): %s", why)
				}
				return nil, errors.New("the broker refused the connection (forbidden)")
			}
			return nil, fmt.Errorf("%w: %s answered HTTP %d", ErrUnreachable, broker.Host, resp.StatusCode)
		}
		return nil, Explain(broker, err)
	}
	ws.SetReadLimit(1 << 20)
	return ws, nil
}

// refusal returns the broker's reason for refusing a WebSocket, from the
// start of its answer's body: plain text, or a JSON API error.
func refusal(resp *http.Response) string {
	if resp.Body == nil {
		return ""
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	if !utf8.Valid(data) || strings.ContainsAny(string(data), "<>") {
		return "" // not a sentence for the user (an HTML page, say)
	}
	return strings.TrimSpace(string(data))
}

// Explain wraps a connection error in the sentinel that tells the user
// what to do.
func Explain(broker *url.URL, err error) error {
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknownAuthority), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return fmt.Errorf("%w: %s presented a certificate this computer does not trust (pass the broker's CA with -ca): %v", ErrUntrusted, broker.Host, err)
	}
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &opErr) || errors.As(err, &dnsErr) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: cannot connect to %s: %w", ErrUnreachable, broker.Host, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnreachable, broker.Host, err)
}

// Conn is a signaling connection with serialised writes.
type Conn struct {
	ws      *websocket.Conn
	writeMu sync.Mutex
	silence time.Duration // see KeepAlive; 0 until it is called
	closed  chan struct{}
	once    sync.Once
}

// NewConn wraps ws.
func NewConn(ws *websocket.Conn) *Conn { return &Conn{ws: ws, closed: make(chan struct{})} }

// Hosts and viewers ping the broker on signaling every PingEvery, and take
// it for gone once they have heard nothing at all from it, not even the
// answer to a ping, for BrokerSilence: as long as the media connection
// takes to fail (internal/rtc). The media connection alone does not tell:
// it is not there until the broker's offer comes (a host waiting with a
// code has none), and a dead path to the broker's web port (a proxy on the
// way) leaves it working.
const (
	PingEvery     = 5 * time.Second
	BrokerSilence = 30 * time.Second
)

// KeepAlive pings the broker every interval until the connection closes,
// and makes Read fail with an error that wraps os.ErrDeadlineExceeded once
// nothing at all, not even the answer to a ping, has come for silence: a
// broker that froze, or whose network went, leaves the connection open
// but silent, and a reader would wait on it for ever. Call it before the
// first Read.
func (c *Conn) KeepAlive(interval, silence time.Duration) {
	c.silence = silence
	c.heard()
	c.ws.SetPongHandler(func(string) error { return c.heard() })
	c.ws.SetPingHandler(func(data string) error {
		c.heard()
		// As the default handler: a pong that cannot go out is no reason
		// to stop reading.
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		var netErr net.Error
		if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &netErr) {
			return nil
		}
		return err
	})
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-c.closed:
				return
			case <-t.C:
			}
			if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(interval)) != nil {
				return
			}
		}
	}()
}

// heard notes that the broker said something, so that its silence is
// counted from now. Only the reading goroutine calls it.
func (c *Conn) heard() error {
	if c.silence == 0 {
		return nil
	}
	return c.ws.SetReadDeadline(time.Now().Add(c.silence))
}

// Send writes one message; it is safe for concurrent use.
func (c *Conn) Send(typ, session string, payload any) error {
	data, err := protocol.Encode(typ, session, payload)
	if err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// Read returns the next message, skipping nothing: callers skip types they
// do not know.
func (c *Conn) Read() (protocol.Envelope, error) {
	_, data, err := c.ws.ReadMessage()
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		// The websocket package keeps the timeout, not its cause.
		return protocol.Envelope{}, fmt.Errorf("%w: %v", os.ErrDeadlineExceeded, err)
	}
	if err != nil {
		return protocol.Envelope{}, err
	}
	c.heard()
	return protocol.Decode(data)
}

// Close closes the connection politely.
func (c *Conn) Close() error {
	c.once.Do(func() { close(c.closed) })
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return c.ws.Close()
}

// RemoteError is an error message from the broker.
type RemoteError struct {
	Code    string
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// AsRemoteError decodes an error envelope.
func AsRemoteError(env protocol.Envelope) error {
	var p protocol.ErrorPayload
	if err := protocol.DecodePayload(env, &p); err != nil {
		return fmt.Errorf("broker sent an unreadable error: %w", err)
	}
	return &RemoteError{Code: p.Code, Message: p.Message}
}
