package pvesim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// PVE tickets live two hours; clients renew by posting the ticket as the
// password, which go-proxmox's RefreshTicket relies on.
const ticketLifetime = 2 * time.Hour

func (s *Simulator) sign(kind, payload string) string {
	m := hmac.New(sha256.New, s.ticketKey)
	m.Write([]byte(kind + "\x00" + payload))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// newTicket returns PVE's "PVE:user@realm:HEXTIME::signature" format.
func (s *Simulator) newTicket(user string, at time.Time) string {
	payload := fmt.Sprintf("PVE:%s:%08X", user, at.Unix())
	return payload + "::" + s.sign("ticket", payload)
}

func (s *Simulator) csrfToken(user string, at time.Time) string {
	ts := fmt.Sprintf("%08X", at.Unix())
	return ts + ":" + s.sign("csrf", ts+":"+user)
}

// verifyTicket returns the user a ticket was issued to.
func (s *Simulator) verifyTicket(ticket string) (string, bool) {
	payload, sig, ok := strings.Cut(ticket, "::")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.sign("ticket", payload))) {
		return "", false
	}
	parts := strings.Split(payload, ":")
	if len(parts) != 3 || parts[0] != "PVE" {
		return "", false
	}
	ts, err := strconv.ParseInt(parts[2], 16, 64)
	if err != nil || s.now().Sub(time.Unix(ts, 0)) > ticketLifetime {
		return "", false
	}
	return parts[1], true
}

func (s *Simulator) verifyCSRF(user, token string) bool {
	ts, _, ok := strings.Cut(token, ":")
	if !ok {
		return false
	}
	return hmac.Equal([]byte(token), []byte(ts+":"+s.sign("csrf", ts+":"+user)))
}

// authenticate mirrors pveproxy: API token header first, then the ticket
// cookie, and for cookie auth every non-GET needs the CSRF header.
func (s *Simulator) authenticate(r *http.Request) (string, error) {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "PVEAPIToken=") {
		id, secret := splitToken(strings.TrimPrefix(h, "PVEAPIToken="))
		if id != s.tokenUser || subtle.ConstantTimeCompare([]byte(secret), []byte(s.tokenSecret)) != 1 {
			return "", unauthorized("authentication failure")
		}
		return id, nil
	}
	ticket := cookieValue(r, "PVEAuthCookie")
	if ticket == "" {
		return "", unauthorized("No ticket")
	}
	user, ok := s.verifyTicket(ticket)
	if !ok {
		return "", unauthorized("authentication failure")
	}
	if r.Method != http.MethodGet && !s.verifyCSRF(user, r.Header.Get("CSRFPreventionToken")) {
		return "", unauthorized("Permission check failed (invalid csrf token)")
	}
	return user, nil
}

// cookieValue parses the Cookie header by hand: tickets contain '=' and
// ':' and some clients URL-encode them, which net/http's parser rejects.
func cookieValue(r *http.Request, name string) string {
	for _, h := range r.Header.Values("Cookie") {
		for _, part := range strings.Split(h, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || k != name {
				continue
			}
			if strings.Contains(v, "%") {
				if u, err := url.QueryUnescape(v); err == nil {
					v = u
				}
			}
			return v
		}
	}
	return ""
}

func (s *Simulator) postTicket(c *call) (any, error) {
	user := c.p["username"]
	if realm := c.p["realm"]; realm != "" && !strings.Contains(user, "@") {
		user += "@" + realm
	}
	pass := c.p["password"]
	ok := user == s.opts.User && subtle.ConstantTimeCompare([]byte(pass), []byte(s.opts.Password)) == 1
	if !ok && strings.HasPrefix(pass, "PVE:") {
		tu, valid := s.verifyTicket(pass)
		ok = valid && tu == user
	}
	if !ok {
		return nil, unauthorized("authentication failure")
	}
	now := s.now()
	return map[string]any{
		"username":            user,
		"ticket":              s.newTicket(user, now),
		"CSRFPreventionToken": s.csrfToken(user, now),
		"clustername":         s.opts.ClusterName,
		"cap": map[string]map[string]int{
			"vms":     {"VM.PowerMgmt": 1, "VM.Allocate": 1, "VM.Config.Disk": 1, "VM.Clone": 1, "VM.Snapshot": 1, "VM.Audit": 1},
			"nodes":   {"Sys.Audit": 1},
			"storage": {"Datastore.AllocateSpace": 1, "Datastore.Audit": 1},
			"access":  {},
			"dc":      {"Sys.Audit": 1},
		},
	}, nil
}
