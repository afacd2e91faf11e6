package client

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
)

// TestOfferRefusedEndsConnection: a broker whose offer the viewer cannot
// answer (a broken or unsupported description) leaves the viewer told so
// at once, not waiting for ever for media that cannot come.
func TestOfferRefusedEndsConnection(t *testing.T) {
	up := websocket.Upgrader{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		c := dial.NewConn(ws)
		if _, err := c.Read(); err != nil { // the hello
			return
		}
		c.Send(protocol.TypeWelcome, "s_1", protocol.Welcome{State: "active"})
		c.Send(protocol.TypeOffer, "s_1", protocol.SDP{SDP: "v=0 not a session description"})
		for { // a broker that stays connected, answering pings
			if _, err := c.Read(); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL)
	c, err := New(Config{Broker: u, CAFile: ca, Token: "key"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	j, err := c.Join(ctx, "s_1")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	select {
	case <-j.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the viewer still waits 5 s after an offer it could not answer")
	}
	if r := j.EndReason(); !strings.Contains(r, "could not be set up") {
		t.Errorf("end reason %q", r)
	}
}
