package agent

import "net/http"

// DefaultHTTPClient is the client the agent talks to a cluster with when
// Config.HTTPClient is nil (certificate pinned to fingerprint, if any);
// a Config.HTTPClient that only wraps the transport (to trace or record
// requests) starts from it.
func DefaultHTTPClient(fingerprint string) *http.Client { return defaultHTTPClient(fingerprint) }
