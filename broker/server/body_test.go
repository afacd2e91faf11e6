package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
)

// TestSlowRequestBody: a client that sends the headers of a request and
// then only part of its body is answered and cut off when the body's time
// is up, over HTTP/1.1 and HTTP/2, instead of holding a connection of the
// broker for as long as it likes. A host's WebSocket, open from before,
// stays open past that time and still works, and so do ordinary requests.
func TestSlowRequestBody(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.readTimeout = 500 * time.Millisecond
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var admin InitialAdmin
	data, err := os.ReadFile(b.InitialAdminPath())
	if err != nil || json.Unmarshal(data, &admin) != nil {
		t.Fatalf("read %s: %v", b.InitialAdminPath(), err)
	}
	tlsCfg, err := dial.TLSConfig(b.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := dial.BrokerURL(b.URL())

	// A user's computer asks for a support code and waits for it to be
	// claimed, sending nothing meanwhile.
	ws, err := dial.WebSocket(ctx, u, "/ws/host", tlsCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	host := dial.NewConn(ws)
	defer host.Close()
	read := func(want string) protocol.Envelope {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		env, err := host.Read()
		if err != nil || env.Type != want {
			t.Fatalf("host reads %q, %v; want %q", env.Type, err, want)
		}
		return env
	}
	if err := host.Send(protocol.TypeHello, "", protocol.Hello{Version: protocol.Version, Role: protocol.RoleHost, NewCode: true}); err != nil {
		t.Fatal(err)
	}
	var issued protocol.IssuedCode
	if err := protocol.DecodePayload(read(protocol.TypeCode), &issued); err != nil {
		t.Fatal(err)
	}
	opened := time.Now()

	call := func(c *http.Client, path string, body io.Reader, size int64) (*http.Response, string, error) {
		req, _ := http.NewRequest("POST", b.URL()+path, body)
		req.ContentLength = size
		req.Header.Set("Authorization", "Bearer "+admin.APIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp, string(out), nil
	}
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			c := &http.Client{Timeout: 10 * time.Second,
				Transport: &http.Transport{TLSClientConfig: tlsCfg.Clone(), ForceAttemptHTTP2: proto == "HTTP/2.0"}}
			defer c.CloseIdleConnections()
			// The body promises 100 bytes, and its first 11 come; the
			// client waits 5 s for the broker to give up before it does.
			const sent = `{"ticket":{`
			body, stall := io.Pipe()
			defer stall.Close()
			go stall.Write([]byte(sent))
			giveUp := time.AfterFunc(5*time.Second, func() { stall.CloseWithError(errors.New("the broker waited for the rest")) })
			defer giveUp.Stop()
			start := time.Now()
			resp, text, err := call(c, "/api/v1/sessions", body, 100)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("a request whose body stalls is still open after %v: %v", took.Round(time.Millisecond), err)
			}
			if resp.Proto != proto || resp.StatusCode != http.StatusBadRequest || !strings.Contains(text, "could not be read") {
				t.Errorf("a request whose body stalls: %s %d %s", resp.Proto, resp.StatusCode, text)
			}
			if took < cfg.readTimeout || took > 4*time.Second {
				t.Errorf("a request whose body stalls is cut off after %v, want soon after %v", took.Round(time.Millisecond), cfg.readTimeout)
			}

			// A whole body is read and acted on, on a fresh connection or
			// a kept one.
			const whole = `{"ticket":{"id":"INC-1"}}`
			resp, text, err = call(c, "/api/v1/sessions", strings.NewReader(whole), int64(len(whole)))
			if err != nil || resp.StatusCode != http.StatusCreated {
				t.Fatalf("a whole request after one that stalled: %v %v %s", err, resp, text)
			}
		})
	}

	// The host's WebSocket has been open for longer than a body may take,
	// and a technician's claim reaches it.
	if open := time.Since(opened); open < 2*cfg.readTimeout {
		time.Sleep(2*cfg.readTimeout - open)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg.Clone()}}
	defer c.CloseIdleConnections()
	claim := `{"code":"` + issued.Code + `","ticket":{"id":"INC-2"}}`
	resp, text, err := call(c, "/api/v1/sessions/claim", strings.NewReader(claim), int64(len(claim)))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("claim the host's code: %v %v %s", err, resp, text)
	}
	read(protocol.TypeWelcome)
}
