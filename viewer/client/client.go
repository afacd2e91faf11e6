// Package client is the Go technician client: it logs in, creates
// sessions, and joins one to receive the host's screen. The viewer CLI and
// the project's tests use it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tether-support/tether/internal/dial"
)

// Config configures a Client.
type Config struct {
	Broker *url.URL
	// CAFile, when set, is the only CA trusted for the broker.
	CAFile string
	// Token is an API key or a login token from Login.
	Token  string
	Logger *slog.Logger
}

// Client talks to one broker as one technician.
type Client struct {
	cfg  Config
	http *http.Client
	dial func(ctx context.Context, path string) (*dial.Conn, error)
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.Broker == nil {
		return nil, errors.New("viewer: missing broker URL")
	}
	// A key pasted with its line end (a trailing CR from a Windows file)
	// is the same key.
	cfg.Token = strings.TrimSpace(cfg.Token)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tlsCfg, err := dial.TLSConfig(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, http: &http.Client{
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment},
		CheckRedirect: sameBroker,
	}}
	c.dial = func(ctx context.Context, path string) (*dial.Conn, error) {
		header := http.Header{}
		if c.cfg.Token != "" {
			header.Set("Authorization", "Bearer "+c.cfg.Token)
		}
		ws, err := dial.WebSocket(ctx, cfg.Broker, path, tlsCfg, header)
		if err != nil {
			return nil, err
		}
		return dial.NewConn(ws), nil
	}
	return c, nil
}

// sameBroker refuses a redirect elsewhere than the broker itself: the
// request carries the API key (and a login, the password), which a
// redirect to http:// would send in clear text, and one to another
// server would hand to it.
func sameBroker(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme != "https" || req.URL.Host != via[0].URL.Host || len(via) >= 5 {
		return &redirectError{to: req.URL.Redacted()}
	}
	return nil
}

type redirectError struct{ to string }

func (e *redirectError) Error() string {
	return "the broker redirected to " + e.to + "; nothing was sent there (if that server is the broker, give its address as -broker)"
}

// APIError is an error answer of the REST API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code)
}

// do sends a JSON request and decodes a JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.Broker.String()+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	resp, err := c.http.Do(req)
	if redirect := (*redirectError)(nil); errors.As(err, &redirect) {
		return redirect
	}
	if err != nil {
		return dial.Explain(c.cfg.Broker, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error.Message == "" {
			return &APIError{Status: resp.StatusCode, Code: "http_error", Message: http.StatusText(resp.StatusCode)}
		}
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// ErrMustEnrol is why a login is refused to an account whose role requires
// two-factor authentication it has not set up: such a login could do
// nothing but set it up, which the console does.
var ErrMustEnrol = errors.New("your role requires two-factor authentication: set it up in the console, under Account security, then log in here again")

// Login exchanges a username, password and, for an account with two-factor
// authentication, the current code (an *APIError with Code "totp_required"
// asks for it) for a login token, and makes the client use it.
func (c *Client) Login(ctx context.Context, username, password, totp string) (string, error) {
	var out struct {
		Token     string `json:"token"`
		MustEnrol bool   `json:"must_enrol_totp"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/login", map[string]string{"username": username, "password": password, "totp": totp}, &out); err != nil {
		return "", fmt.Errorf("log in: %w", err)
	}
	c.cfg.Token = out.Token
	if out.MustEnrol {
		c.Logout(ctx)
		c.cfg.Token = ""
		return "", ErrMustEnrol
	}
	return out.Token, nil
}

// Logout ends the login whose token the client carries, on the broker:
// the token is no use to anyone afterwards.
func (c *Client) Logout(ctx context.Context) error {
	if err := c.do(ctx, http.MethodPost, "/api/v1/logout", nil, nil); err != nil {
		return fmt.Errorf("log out: %w", err)
	}
	return nil
}

// SessionInfo is a session as the REST API describes it.
type SessionInfo struct {
	ID            string    `json:"id"`
	State         string    `json:"state"`
	Code          string    `json:"code"`
	CodeExpiresAt time.Time `json:"code_expires_at"`
	ConsoleURL    string    `json:"console_url"`
	// JoinURL is the link for the user: it offers the host with the code
	// filled in. Only the answer that creates a session carries it.
	JoinURL string `json:"join_url"`
	Ticket  *struct {
		ID string `json:"id"`
	} `json:"ticket"`
	Host *struct {
		Hostname string `json:"hostname"`
		Width    int    `json:"width"`
		Height   int    `json:"height"`
	} `json:"host"`
	EndReason string `json:"end_reason"`
	// Now is what the user allows the technicians connected now; nil
	// while the user's computer is not in the session.
	Now *struct {
		Allowed []string `json:"allowed"`
		Paused  bool     `json:"paused"`
	} `json:"now"`
}

// CreateSession issues a new session with its one-time code; perms are
// what the technician will ask the user for (default: the broker's).
func (c *Client) CreateSession(ctx context.Context, ticketID string, perms ...string) (*SessionInfo, error) {
	req := map[string]any{}
	if len(perms) > 0 {
		req["permissions"] = perms
	}
	if ticketID != "" {
		req["ticket"] = map[string]string{"id": ticketID}
	}
	var out SessionInfo
	if err := c.do(ctx, http.MethodPost, "/api/v1/sessions", req, &out); err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return &out, nil
}

// Session fetches one session.
func (c *Client) Session(ctx context.Context, id string) (*SessionInfo, error) {
	var out SessionInfo
	if err := c.do(ctx, http.MethodGet, "/api/v1/sessions/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	return &out, nil
}

// EndSession ends a session.
func (c *Client) EndSession(ctx context.Context, id string) error {
	if err := c.do(ctx, http.MethodPost, "/api/v1/sessions/"+url.PathEscape(id)+"/end", nil, nil); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// Invite lets a colleague into a session, or hands it over to them.
func (c *Client) Invite(ctx context.Context, id, username string, handOver bool) error {
	action := "/invite"
	if handOver {
		action = "/handover"
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/sessions/"+url.PathEscape(id)+action, map[string]string{"username": username}, nil); err != nil {
		return fmt.Errorf("invite %s: %w", username, err)
	}
	return nil
}
