package webhooks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

// ExcerptBytes is how much of an answer a delivery record keeps.
const ExcerptBytes = 256

// Payload is the body of a delivery (Standard Webhooks layout): data is
// the event exactly as one item of GET /v1/audit.
type Payload struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      eventlog.Event `json:"data"`
}

// newClient is the HTTP client of deliveries: no proxy (a proxy would dial
// for us, past the guard), connections through the guard, no redirect
// followed (a 3xx is an answer, and a failed delivery).
func newClient(g Guard, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         g.DialContext(timeout),
			TLSHandshakeTimeout: timeout,
			// Each endpoint's worker has at most one request out, and many
			// endpoints may share a host: keep a connection for each,
			// rather than opening one per delivery.
			MaxIdleConns:        4096,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// outcome is what one attempt found.
type outcome struct {
	code    int
	excerpt string
	err     error
	latency time.Duration
	// msgID is the webhook-id sent (computed once: a SHA-1 per call).
	msgID string
}

func (o outcome) ok() bool { return o.err == nil && o.code >= 200 && o.code < 300 }

// send posts an encoded event to ep once, signed with its keys.
func (d *Dispatcher) send(ctx context.Context, ep *liveEndpoint, enc encoded) outcome {
	e, body := enc.event, enc.body
	msgID := MessageID(ep.ID, e.EventID)
	now := d.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return outcome{err: err, msgID: msgID}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "AccountDB-Webhooks/1")
	req.Header.Set(HeaderID, msgID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(ep.keys(now), msgID, now.Unix(), body))
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return outcome{err: err, latency: time.Since(start), msgID: msgID}
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, ExcerptBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return outcome{code: resp.StatusCode, excerpt: excerpt(head), latency: time.Since(start), msgID: msgID}
}

// excerpt keeps valid UTF-8 without control characters (other than
// newlines and tabs) of an answer's first bytes.
func excerpt(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// errorText describes a failed attempt without anything secret (the URL
// may hold a token in its path or query, so it is left out).
func errorText(o outcome) string {
	if o.err == nil {
		if o.ok() {
			return ""
		}
		return "the endpoint answered " + strconv.Itoa(o.code)
	}
	var ue interface{ Unwrap() error }
	err := o.err
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		err = ue.Unwrap() // drop url.Error's "Post <url>:"
	}
	switch {
	case errors.Is(err, ErrForbiddenDestination):
		return err.Error()
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout"):
		return "timed out"
	}
	return err.Error()
}

// record is the delivery an attempt makes.
func record(ep *liveEndpoint, e eventlog.Event, attempt int, o outcome, request uuid.UUID, at time.Time) Delivery {
	msgID := o.msgID
	if msgID == "" {
		msgID = MessageID(ep.ID, e.EventID)
	}
	return Delivery{ID: uuid.Must(uuid.NewV7()), Tenant: ep.Tenant, Webhook: ep.ID, MessageID: msgID,
		EventTenant: e.TenantID, EventPosition: e.Position.GlobalPosition, EventType: e.Type, Attempt: attempt,
		Succeeded: o.ok(), ResponseCode: o.code, Latency: o.latency, ResponseExcerpt: o.excerpt, Error: errorText(o),
		RequestID: request, At: at}
}
