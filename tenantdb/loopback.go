package tenantdb

import (
	"net"
	"net/url"
	"os"
	"strings"
)

// withoutTLSOnLoopback returns databaseURL with sslmode=disable when it
// names a database on this machine (localhost, 127.0.0.0/8, ::1, or a Unix
// socket directory) and chooses no sslmode itself, nor through PGSSLMODE.
//
// Why: libpq's default, sslmode=prefer, encrypts even over loopback, where
// no one can read the traffic who could not read the server's memory, and
// it cost 8–13 % of the core's CPU and as much again in PostgreSQL's
// backends (docs/BENCHMARKS.md, issue 16). prefer never protected against
// an active attacker anyway (it falls back to plain text); a remote
// database keeps it, and an operator who wants TLS on loopback too says so
// in the URL (sslmode=require or stricter), which is left alone.
func withoutTLSOnLoopback(databaseURL string) string {
	if os.Getenv("PGSSLMODE") != "" {
		return databaseURL
	}
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return databaseURL // a keyword/value string: left as written
	}
	q := u.Query()
	if q.Has("sslmode") || !onLoopback(u, q) {
		return databaseURL
	}
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// onLoopback: every host the URL names (it may list several, or name a
// socket directory in its host parameter) is this machine.
func onLoopback(u *url.URL, q url.Values) bool {
	hosts := u.Host
	if h := q.Get("host"); h != "" {
		hosts = h
	}
	if hosts == "" {
		return false
	}
	for _, h := range strings.Split(hosts, ",") {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		h = strings.Trim(h, "[]")
		if strings.HasPrefix(h, "/") || h == "localhost" {
			continue // a Unix socket directory, or this machine by name
		}
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}
