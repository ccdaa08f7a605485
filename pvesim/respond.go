package pvesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// writeData answers with PVE's {"data": ...} envelope.
func writeData(w http.ResponseWriter, data any) {
	body, err := json.Marshal(map[string]any{"data": data})
	if err != nil {
		writeError(w, nil, errf("unable to encode response - %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "max-age=0")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// writeError answers an error like pveproxy: the message is the HTTP reason
// phrase, the body is {"data":null} plus "errors" for parameter failures.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = errf("%s", err.Error())
	}
	body := map[string]any{"data": nil, "message": ae.message + "\n"}
	if len(ae.errors) > 0 {
		body["errors"] = ae.errors
	}
	b, _ := json.Marshal(body)
	writeStatus(w, r, ae.status, reasonPhrase(ae.message), b)
}

func reasonPhrase(msg string) string {
	msg = strings.TrimSpace(msg)
	msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
	if msg == "" {
		return "Internal Server Error"
	}
	return msg
}

// writeStatus sends a custom reason phrase. net/http always writes the
// canonical StatusText, but go-proxmox turns a 500's status line into the
// error it returns, so callers only see PVE's message if the phrase is
// right. Hijacking is the only way to write it; without a hijackable
// connection (HTTP/2, httptest.ResponseRecorder) the message still
// travels in the body.
func writeStatus(w http.ResponseWriter, r *http.Request, status int, reason string, body []byte) {
	if reason != http.StatusText(status) {
		if hj, ok := w.(http.Hijacker); ok && (r == nil || r.ProtoMajor == 1) {
			if r != nil && r.Body != nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
			}
			conn, buf, err := hj.Hijack()
			if err == nil {
				defer func() { _ = conn.Close() }()
				_, _ = fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", status, reason, len(body))
				_, _ = buf.Write(body)
				_ = buf.Flush()
				return
			}
		}
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
