package server

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// TestConsoleFiles: the console's files go gzipped to a browser that takes
// gzip, as they are to one that does not, each with its own ETag; a page
// loaded again gets 304 for a file it holds, and every answer says to ask
// again (a broker upgrade changes the files). Folders are not listed.
func TestConsoleFiles(t *testing.T) {
	app := []byte(strings.Repeat("export const greeting = 'hello';\n", 200))
	noise := make([]byte, 4096)
	rand.Read(noise)
	c, err := loadConsoleFiles(fstest.MapFS{
		"index.html":          {Data: []byte("<!doctype html><title>Tether console</title>")},
		"app.js":              {Data: app},
		"vendor/lib/noise.js": {Data: noise},
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, header ...string) *http.Response {
		t.Helper()
		req := httptest.NewRequest("GET", "/"+path, nil)
		for i := 0; i < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		c.ServeHTTP(w, req)
		return w.Result()
	}
	read := func(res *http.Response) []byte {
		t.Helper()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if res.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		return body
	}

	zipped := get("app.js", "Accept-Encoding", "br, gzip, deflate")
	if zipped.StatusCode != 200 || zipped.Header.Get("Content-Encoding") != "gzip" || zipped.ContentLength >= int64(len(app))/4 {
		t.Fatalf("app.js to a browser that takes gzip: %d, encoding %q, %d bytes of %d", zipped.StatusCode, zipped.Header.Get("Content-Encoding"), zipped.ContentLength, len(app))
	}
	if got := read(zipped); !bytes.Equal(got, app) {
		t.Fatalf("app.js gzipped is %d bytes unzipped, not the file", len(got))
	}
	plain := get("app.js")
	if plain.Header.Get("Content-Encoding") != "" || !bytes.Equal(read(plain), app) {
		t.Fatalf("app.js to a client that does not take gzip: encoding %q", plain.Header.Get("Content-Encoding"))
	}
	if refused := get("app.js", "Accept-Encoding", "gzip;q=0, identity"); refused.Header.Get("Content-Encoding") != "" {
		t.Fatalf("app.js gzipped to a client that refuses gzip (q=0)")
	}
	for _, res := range []*http.Response{zipped, plain} {
		if cc, vary, ct := res.Header.Get("Cache-Control"), res.Header.Get("Vary"), res.Header.Get("Content-Type"); cc != "no-cache" || vary != "Accept-Encoding" || !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("app.js: Cache-Control %q, Vary %q, Content-Type %q", cc, vary, ct)
		}
	}
	zipTag, plainTag := zipped.Header.Get("ETag"), plain.Header.Get("ETag")
	if zipTag == "" || plainTag == "" || zipTag == plainTag {
		t.Fatalf("ETags %q (gzip) and %q (plain): each representation needs its own", zipTag, plainTag)
	}

	// Loaded again: 304 without a body for what the browser holds.
	if res := get("app.js", "Accept-Encoding", "gzip", "If-None-Match", zipTag); res.StatusCode != http.StatusNotModified || len(read(res)) != 0 {
		t.Errorf("app.js asked again with its ETag: %d", res.StatusCode)
	}
	if res := get("app.js", "If-None-Match", plainTag); res.StatusCode != http.StatusNotModified {
		t.Errorf("app.js asked again with its plain ETag: %d", res.StatusCode)
	}
	if res := get("app.js", "If-None-Match", zipTag); res.StatusCode != 200 || !bytes.Equal(read(res), app) {
		t.Errorf("app.js asked without gzip with the gzipped one's ETag: %d", res.StatusCode)
	}
	if res := get("app.js", "Accept-Encoding", "gzip", "If-None-Match", `"an-older-console"`); res.StatusCode != 200 {
		t.Errorf("app.js asked again after an upgrade: %d", res.StatusCode)
	}

	// What gzip does not shrink goes as it is.
	if res := get("vendor/lib/noise.js", "Accept-Encoding", "gzip"); res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "" || !bytes.Equal(read(res), noise) {
		t.Errorf("a file gzip does not shrink: %d, encoding %q", res.StatusCode, res.Header.Get("Content-Encoding"))
	}
	if res := get(""); res.StatusCode != 200 || !strings.Contains(string(read(res)), "Tether console") {
		t.Errorf("the console folder itself: %d, want the index page", res.StatusCode)
	}
	for _, path := range []string{"vendor/", "vendor/lib", "missing.js", "../server.go"} {
		if res := get(path); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, res.StatusCode)
		}
	}
}
