package api

import (
	"net/http"

	"github.com/accountdb/accountdb/domain"
)

// textHeaders are the request headers the API reads or records; each must be
// domain.ValidText like any query parameter (net/http already refuses control
// characters in header values, but not bytes that are not UTF-8).
var textHeaders = []string{"Idempotency-Key", "If-Match", "X-Consistency-Token", "Last-Event-ID",
	"X-Correlation-Id", "User-Agent"}

// requireText refuses, with one 400 naming every offender, a request whose
// query parameters (names or values) or textHeaders are not valid UTF-8 or
// contain NUL: PostgreSQL refuses such strings, which would otherwise surface
// as 500s from whichever query they reach. Bodies are checked by DecodeJSON.
func requireText(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var fe FieldErrors
		for name, values := range r.URL.Query() {
			if !domain.ValidText(name) {
				fe.Add(domain.PrintableName(name), "the parameter name "+domain.InvalidTextMessage)
				continue
			}
			for _, v := range values {
				if !domain.ValidText(v) {
					fe.Add(name, domain.InvalidTextMessage)
					break
				}
			}
		}
		for _, h := range textHeaders {
			for _, v := range r.Header.Values(h) {
				if !domain.ValidText(v) {
					fe.Add(h, domain.InvalidTextMessage)
					break
				}
			}
		}
		if err := fe.Err(); err != nil {
			WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
