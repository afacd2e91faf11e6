package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
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

// TestIndexPreloadsEveryModule: index.html names every module app.js
// imports, directly or through another, for the browser to fetch at once
// (modulepreload), and no other: a module left off is fetched only once
// the one that imports it has arrived, one round trip more per level.
func TestIndexPreloadsEveryModule(t *testing.T) {
	fsys := FS()
	index, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	preloaded := map[string]bool{}
	for _, m := range regexp.MustCompile(`<link rel="modulepreload" href="/console/([^"]+)">`).FindAllStringSubmatch(string(index), -1) {
		preloaded[m[1]] = true
	}
	imports := regexp.MustCompile(`\bfrom '(\./[^']+)'`)
	imported := map[string]bool{}
	queue := []string{"app.js"}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		for _, m := range imports.FindAllStringSubmatch(string(src), -1) {
			dep := path.Join(path.Dir(name), m[1])
			if !imported[dep] {
				imported[dep] = true
				queue = append(queue, dep)
			}
		}
	}
	if len(imported) < 10 {
		t.Fatalf("app.js imports %d modules, directly or not: the import pattern no longer matches", len(imported))
	}
	for name := range imported {
		if !preloaded[name] {
			t.Errorf("index.html does not preload %s, which app.js imports", name)
		}
	}
	for name := range preloaded {
		if !imported[name] {
			t.Errorf("index.html preloads %s, which app.js does not import", name)
		}
	}
}
