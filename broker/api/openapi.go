package api

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3 description of REST API v1. A test walks the
// registered routes against it and validates real responses with it; a
// new endpoint is documented there in the same change.
//
//go:embed openapi.yaml
var OpenAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(OpenAPI)
}
