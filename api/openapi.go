package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3.1 description of every route NewHandler serves
// except the operations endpoints. TestOpenAPIMatchesRouter keeps the two in
// step: add a route, add it to openapi.json.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPIDocument returns a copy of the embedded OpenAPI document.
func OpenAPIDocument() []byte {
	return append([]byte(nil), openAPIDoc...)
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPIDoc)
}
