package protocol

import (
	"errors"
	"strings"
	"testing"
)

func TestFileMessageRoundTrip(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, m := range []FileMessage{
		{Type: FilePut, Name: "tool.bin", Size: 10, SHA256: sum},
		{Type: FileGet, Path: "logs/app.log", Offset: 4096},
		{Type: FileList, Path: "."},
		{Type: FileCancel},
		{Type: FileReady, Name: "tool.bin", Size: 10, Offset: 3, Direction: DirectionUpload},
		{Type: FileListing, Path: "logs", Entries: []FileEntry{{Name: "a", Size: 1, Kind: "file"}, {Name: "d", Dir: true, Kind: "dir"}}},
		{Type: FileDone, Name: "x", Size: 10, SHA256: sum, Path: "/home/u/x", Direction: DirectionDownload},
		{Type: FileError, Code: FileErrPath, Message: "no", Direction: DirectionUpload},
	} {
		b, err := EncodeFile(m)
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		got, err := DecodeFile(b)
		if err != nil || got.Type != m.Type || got.Path != m.Path || got.Size != m.Size || got.SHA256 != m.SHA256 || len(got.Entries) != len(m.Entries) {
			t.Fatalf("round trip of %+v gave %+v, %v", m, got, err)
		}
	}
}

func TestFileMessageLimits(t *testing.T) {
	for name, b := range map[string]string{
		"too large":     `{"type":"list","path":"` + strings.Repeat("a", MaxFileMessage) + `"}`,
		"long name":     `{"type":"put","name":"` + strings.Repeat("n", MaxPath+1) + `","sha256":"` + strings.Repeat("0", 64) + `"}`,
		"long path":     `{"type":"get","path":"` + strings.Repeat("p", MaxPath+1) + `"}`,
		"negative size": `{"type":"put","name":"a","size":-1,"sha256":"` + strings.Repeat("0", 64) + `"}`,
		"negative off":  `{"type":"get","path":"a","offset":-5}`,
		"bad hash":      `{"type":"put","name":"a","size":1,"sha256":"XYZ"}`,
		"put no hash":   `{"type":"put","name":"a","size":1}`,
		"no type":       `{"path":"a"}`,
		"not json":      `{"type":`,
	} {
		if _, err := DecodeFile([]byte(b)); !errors.Is(err, ErrFileMessage) {
			t.Errorf("%s: %v, want ErrFileMessage", name, err)
		}
	}
}

// TestFileMessageCarriesLongName: a name longer than the user's computer
// allows still passes, for the host to say so in words.
func TestFileMessageCarriesLongName(t *testing.T) {
	long := strings.Repeat("n", 300)
	b, err := EncodeFile(FileMessage{Type: FilePut, Name: long, Size: 1, SHA256: strings.Repeat("0", 64)})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := DecodeFile(b); err != nil || m.Name != long {
		t.Fatalf("a 300-byte name: %v", err)
	}
}

func TestShellMessages(t *testing.T) {
	m, err := DecodeShell(EncodeShell(ShellMessage{Type: ShellResize, Cols: 132, Rows: 40}))
	if err != nil || m.Cols != 132 || m.Rows != 40 {
		t.Fatalf("resize: %+v %v", m, err)
	}
	for _, b := range []string{`{"type":"resize","cols":0,"rows":10}`, `{"type":"resize","cols":10,"rows":100000}`, `{"type":""}`, strings.Repeat(" ", MaxShellMessage+1)} {
		if _, err := DecodeShell([]byte(b)); !errors.Is(err, ErrShellMessage) {
			t.Errorf("%q: %v", b, err)
		}
	}
	for label, want := range map[string]bool{"shell-1": true, "shell-99": true, "shell-0": false, "shell-01": false, "shell-100": false, "shell-": false, "shell": false, "shell-a": false, "files": false} {
		if ShellChannel(label) != want {
			t.Errorf("ShellChannel(%q) = %v", label, !want)
		}
	}
	for label, want := range map[string]bool{"files": true, "files-browse": true, "files-2": false, "Files": false, "shell-1": false} {
		if FilesChannel(label) != want {
			t.Errorf("FilesChannel(%q) = %v", label, !want)
		}
	}
}

func FuzzDecodeFile(f *testing.F) {
	f.Add([]byte(`{"type":"put","name":"a.bin","size":3,"sha256":"` + strings.Repeat("0", 64) + `"}`))
	f.Add([]byte(`{"type":"listing","path":".","entries":[{"name":"a","size":1,"kind":"file","mtime":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeFile(b)
		if err != nil {
			return
		}
		if _, err := EncodeFile(m); err != nil {
			t.Fatalf("decoded %+v does not encode: %v", m, err)
		}
	})
}

func FuzzDecodeShell(f *testing.F) {
	f.Add([]byte(`{"type":"resize","cols":80,"rows":24}`))
	f.Add([]byte(`{"type":"exit","code":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeShell(b)
		if err == nil && m.Type == ShellResize && (m.Cols < 1 || m.Rows < 1) {
			t.Fatalf("accepted %+v", m)
		}
	})
}
