package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// consoleFiles serves the console's files from memory, as browsers load
// them best. Each has a strong ETag (its SHA-256) and Cache-Control:
// no-cache: a page loaded again asks whether each file changed, as a
// broker upgrade changes them, and gets 304 Not Modified for those that
// did not. Text goes gzipped to browsers that take it (about a quarter of
// its size). A folder is answered 404, never with a list of its files: no
// page needs one, and it would show anyone which libraries, and where, the
// console carries.
type consoleFiles struct {
	files map[string]*consoleFile // by path in the console folder
}

type consoleFile struct {
	body          []byte
	etag, gzipTag string

	zip     sync.Once // compresses body once, when first asked for
	gzipped []byte    // nil when gzip would not shrink body
}

// compressed returns the file gzipped, or nil when gzip would not shrink
// it.
func (f *consoleFile) compressed() []byte {
	f.zip.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(f.body)
		zw.Close()
		if buf.Len() < len(f.body)*9/10 {
			f.gzipped = buf.Bytes()
		}
	})
	return f.gzipped
}

// loadConsoleFiles reads every file of fsys.
func loadConsoleFiles(fsys fs.FS) (*consoleFiles, error) {
	c := &consoleFiles{files: map[string]*consoleFile{}}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		tag := hex.EncodeToString(sum[:16])
		c.files[name] = &consoleFile{body: body, etag: strconv.Quote(tag), gzipTag: strconv.Quote(tag + "-gzip")}
		return nil
	})
	return c, err
}

func (c *consoleFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.serve(w, r, strings.Trim(r.URL.Path, "/"))
}

// serve answers with the file name, or 404; "" is the index page.
func (c *consoleFiles) serve(w http.ResponseWriter, r *http.Request, name string) {
	if name == "" {
		name = "index.html"
	}
	f := c.files[name]
	if f == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	body, etag := f.body, f.etag
	if gzipped := f.compressed(); gzipped != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body, etag = gzipped, f.gzipTag
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	// ServeContent takes the type from the name, and answers
	// If-None-Match and ranges.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether the request's Accept-Encoding takes gzip
// (and does not refuse it with q=0).
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
			if !ok {
				return true
			}
			weight, err := strconv.ParseFloat(q, 64)
			return err == nil && weight > 0
		}
	}
	return false
}
