package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestFSServesConsole checks that the embedded console is complete: the
// entry point is there, every asset index.html links to under /console/ is
// there, and every module a module imports is there.
func TestFSServesConsole(t *testing.T) {
	fsys := FS()
	index, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		t.Fatalf("read index.html: %v", err)
	}

	want := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?:href|src)="/console/([^"]+)"`).FindAllStringSubmatch(string(index), -1) {
		want[m[1]] = true
	}
	if !want["app.js"] || !want["style.css"] {
		t.Fatalf("index.html links %v, want app.js and style.css among them", want)
	}

	imports := regexp.MustCompile(`\bfrom '\./([^']+)'`)
	err = fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".js") {
			return err
		}
		src, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		for _, m := range imports.FindAllStringSubmatch(string(src), -1) {
			want[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk console: %v", err)
	}

	srv := httptest.NewServer(http.FileServerFS(fsys))
	defer srv.Close()
	for name := range want {
		res, err := http.Get(srv.URL + "/" + name)
		if err != nil {
			t.Fatalf("GET %s: %v", name, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", name, res.StatusCode)
		}
	}
}
