package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

func udpPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// testConfig is a broker on loopback with data in dir, no recording and no
// log output.
func testConfig(t *testing.T, dir string) Config {
	return Config{Addr: "127.0.0.1:0", DataDir: dir, UDPPort: udpPort(t), Recording: RecordingConfig{Disabled: true},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// A second broker on the same data directory would end the first one's
// live sessions as interrupted; it must refuse to start instead, and say
// which process holds the directory.
func TestOneBrokerPerDataDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := func() Config { return testConfig(t, dir) }
	first, err := New(ctx, cfg())
	if err != nil {
		t.Fatal(err)
	}
	second, err := New(ctx, cfg())
	if err == nil {
		second.close()
		first.close()
		t.Fatal("a second broker started on a data directory in use")
	}
	want := "data directory " + dir + " is in use by another broker (process " + strconv.Itoa(os.Getpid()) + ")"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
	if err := first.close(); err != nil {
		t.Fatal(err)
	}
	third, err := New(ctx, cfg())
	if err != nil {
		t.Fatalf("after the first broker stopped: %v", err)
	}
	third.close()
}

// Two brokers with data directories of their own but one recordings
// directory: the second's recovery would reseal the first one's live
// recordings as incomplete, with its own key. It must refuse to start.
func TestOneBrokerPerRecordingsDir(t *testing.T) {
	ctx := context.Background()
	recordings := t.TempDir()
	cfg := func() Config {
		c := testConfig(t, t.TempDir())
		c.Recording = RecordingConfig{Dir: recordings}
		return c
	}
	first, err := New(ctx, cfg())
	if err != nil {
		t.Fatal(err)
	}
	second, err := New(ctx, cfg())
	if err == nil {
		second.close()
		first.close()
		t.Fatal("a second broker started on a recordings directory in use")
	}
	want := "recordings directory " + recordings + " is in use by another broker (process " + strconv.Itoa(os.Getpid()) + "); stop it or give this one its own -recordings"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
	if err := first.close(); err != nil {
		t.Fatal(err)
	}
	third, err := New(ctx, cfg())
	if err != nil {
		t.Fatalf("after the first broker stopped: %v", err)
	}
	third.close()
}
