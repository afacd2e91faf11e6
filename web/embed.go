// Package web holds the browser side of Tether: the technician console, a
// static app of plain ES modules and hand-written CSS with no build step, and
// embeds it in the broker binary so that `go build` serves it from a clean
// clone.
//
// The console references its assets by absolute path under /console/, so the
// broker mounts FS there and answers the app's entry points with index.html:
//
//	mux.Handle("GET /console/", http.StripPrefix("/console/", http.FileServerFS(web.FS())))
//	mux.HandleFunc("GET /{$}", serveIndex)     // index.html
//	mux.HandleFunc("GET /console", serveIndex) // index.html
//
// In-app navigation uses the URL fragment (#/sessions, #/session/<id>), so no
// other path needs rewriting.
package web

import (
	"embed"
	"io/fs"
)

//go:embed console
var files embed.FS

// JoinPage is the template of the page a user opens from a support link,
// /join/<code>; JoinCSS is its style sheet. The broker fills the page in.
//
//go:embed join/join.html
var JoinPage string

//go:embed join/join.css
var JoinCSS []byte

// FS returns the console's files rooted at the console folder (index.html,
// app.js, style.css, favicon.svg, ...), ready for http.FileServerFS.
func FS() fs.FS {
	sub, err := fs.Sub(files, "console")
	if err != nil {
		// fs.Sub fails only on an invalid path, and "console" is a constant.
		panic("web: " + err.Error())
	}
	return sub
}
