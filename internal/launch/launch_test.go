package launch

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host")
	program := []byte("\x7fELF pretend program body")
	want := Settings{Broker: "https://support.example.com:8443", Code: "482193075", CAPEM: "-----BEGIN CERTIFICATE-----\n..."}
	trailer, err := Trailer(want)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, append(program, trailer...), 0o700)
	got, err := Read(path)
	if err != nil || got != want {
		t.Fatalf("Read = %+v, %v; want %+v", got, err, want)
	}

	// A plain program carries none.
	os.WriteFile(path, program, 0o700)
	if _, err := Read(path); !errors.Is(err, ErrNone) {
		t.Fatalf("plain program: %v", err)
	}
	// A damaged length is refused before anything is allocated for it.
	bad := append(append([]byte{}, program...), 0xff, 0xff, 0xff, 0xff)
	os.WriteFile(path, append(bad, marker...), 0o700)
	if _, err := Read(path); err == nil || errors.Is(err, ErrNone) {
		t.Fatalf("damaged length: %v", err)
	}
	// Too big to write.
	if _, err := Trailer(Settings{CAPEM: string(make([]byte, MaxSize))}); err == nil {
		t.Fatal("oversized settings accepted")
	}
}
