package server

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSharedPort: on the broker's one TCP port, HTTPS works as on a port of
// its own, plain HTTP still gets the server's hint to use HTTPS, and an
// ICE-TCP connection reaches ICE with every byte it sent. A client that
// connects and says nothing holds up no one, and is let go when the port
// closes.
func TestSharedPort(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := newSharedPort(tcp, slog.Default())
	defer p.Close()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "console") }))
	srv.Listener = p.https
	srv.StartTLS()
	defer srv.Close()

	silent, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	start := time.Now()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "console" {
		t.Fatalf("HTTPS through the shared port: %q", body)
	}
	if d := time.Since(start); d > sniffTimeout/2 {
		t.Errorf("HTTPS took %v while a silent client was connected", d)
	}

	resp, err = http.Get("http://" + p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") {
		t.Errorf("plain HTTP: %s %q; want the server's hint to use HTTPS", resp.Status, body)
	}

	// A STUN binding request (type 1, no attributes, the magic cookie, a
	// transaction id) in an RFC 4571 frame, as an ICE-TCP peer first sends.
	stun := append([]byte{0, 1, 0, 0}, stunCookie...)
	stun = append(stun, []byte("transaction1")...)
	frame := binary.BigEndian.AppendUint16(nil, uint16(len(stun)))
	frame = append(frame, stun...)
	peer, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := peer.Write(frame); err != nil {
		t.Fatal(err)
	}
	ice, err := p.ice.Accept()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(frame))
	ice.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(ice, got); err != nil || !bytes.Equal(got, frame) {
		t.Fatalf("ICE read %x, %v; want %x", got, err, frame)
	}
	ice.Close()

	// Closing the port lets the silent client go at once.
	p.Close()
	silent.SetReadDeadline(time.Now().Add(sniffTimeout / 2))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the silent client reads %v after the port closed; want EOF", err)
	}
}
