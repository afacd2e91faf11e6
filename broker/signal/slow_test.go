package signal

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-support/tether/internal/protocol"
)

// TestStalledPeerIsClosed: a host that stops reading while the broker has
// things to tell it fills the socket, and the broker's write times out.
// The connection can write nothing more after that: the broker closes it,
// so that the session hears the host is gone and the host connects again,
// rather than keeping a connection that hears nothing.
func TestStalledPeerIsClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the write timeout")
	}
	b := newTestHub(t)
	ctx := context.Background()
	tech, err := b.auth.CreateUser(ctx, "alice", "correct horse battery", "technician")
	if err != nil {
		t.Fatal(err)
	}
	sess, code, err := b.hub.CreateSession(ctx, tech, tech, Ticket{ID: "T-1"}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ws := b.dial("/ws/host", nil)
	sendRaw(t, ws, fmt.Sprintf(`{"v":1,"type":"hello","payload":{"version":1,"role":"host","code":%q}}`, code))
	if env := readRaw(t, ws); env.Type != protocol.TypeWelcome {
		t.Fatalf("got %q, want a welcome", env.Type)
	}
	// Each malformed message is answered with an error; the host reads
	// none of the answers until the broker's writes have timed out.
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		for range 200_000 {
			if ws.WriteMessage(websocket.TextMessage, []byte("not json")) != nil {
				return
			}
		}
	}()
	time.Sleep(writeTimeout + 3*time.Second)
	for {
		// Silence once the answers are read is a connection left open.
		ws.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
			t.Fatalf("the broker keeps the connection of a host it can no longer write to open: %v", err)
		}
		break
	}
	<-flooded
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := b.store.SessionByID(ctx, sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == "ended" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s is %s after its host's connection closed", sess.ID, got.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCloseLetsGoOfPeerBeforeHello: a peer that connected and has not
// said hello (it vanished mid-handshake, or is slow) does not hold up
// the broker's shutdown until its hello times out, and a peer that comes
// once the hub is closed is turned away.
func TestCloseLetsGoOfPeerBeforeHello(t *testing.T) {
	b := newTestHub(t)
	ws := b.dial("/ws/host", nil)
	time.Sleep(100 * time.Millisecond) // the broker waits for the hello
	start := time.Now()
	b.hub.Close()
	if d := time.Since(start); d > helloTimeout/2 {
		t.Errorf("Close took %v with a peer yet to say hello", d.Round(time.Millisecond))
	}
	ws.SetReadDeadline(time.Now().Add(time.Second))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, closeShutdown) {
		t.Errorf("the peer read %v, want the broker's close for its shutdown", err)
	}
	if _, resp, err := b.tryDial("/ws/host", nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("a host connected to a closed hub: %v, %v", err, resp)
	}
}
