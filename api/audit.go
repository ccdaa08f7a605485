package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// GET /v1/audit lists the events of the caller's tenant (a platform
// administrator names another with ?tenant_id=), read from the event store
// itself: it is the audit log. Pages go by global position; with
// Accept: application/x-ndjson every match is streamed, one event per line.

const ndjson = "application/x-ndjson"

// eventTypePattern is what an event type looks like; anything else cannot
// match and is a client error.
var eventTypePattern = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,99}$`)

// auditCursor is where the next page starts.
type auditCursor struct {
	Position int64 `json:"p"`
}

// auditFilter reads the query; every invalid field is named in one 400.
func auditFilter(r *http.Request, tenant uuid.UUID) (eventstore.AuditFilter, error) {
	q := r.URL.Query()
	f := eventstore.AuditFilter{TenantID: tenant}
	var fe FieldErrors
	single := func(name string) (string, bool) { return singleParam(q, &fe, name) }
	if s, ok := streamIDParam(q, &fe); ok {
		f.Stream = &s
	}
	for _, v := range q["type"] {
		for _, t := range strings.Split(v, ",") {
			if !eventTypePattern.MatchString(t) {
				fe.Add("type", "must be event types such as vm_create_requested (repeat type= for several)")
				break
			}
			f.Types = append(f.Types, t)
		}
	}
	if v, ok := single("actor_id"); ok {
		a, err := uuid.Parse(v)
		if err != nil {
			fe.Add("actor_id", "must be a UUID")
		}
		f.ActorID = a
	}
	instant := func(name string) time.Time {
		v, ok := single(name)
		if !ok {
			return time.Time{}
		}
		t, err := parseInstant(v)
		if err != nil {
			fe.Add(name, "must be an RFC 3339 date-time, e.g. 2024-05-01T12:00:00Z")
		}
		return t
	}
	f.Since, f.Until = instant("since"), instant("until")
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		fe.Add("until", "must not be before since")
	}
	// from_position starts the list at an event (the console's links to a
	// cited event, docs/ASSISTANT.md); a cursor, when given, goes on from it.
	if v, ok := single("from_position"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			fe.Add("from_position", "must be a positive event position")
		}
		f.After = n - 1
	}
	var c auditCursor
	if has, err := CursorParam(r, &c); err != nil {
		return f, err
	} else if has {
		f.After = c.Position
	}
	return f, fe.Err()
}

// singleParam is the query parameter name, which may be given at most once
// (else fe says so); it reports whether it is set.
func singleParam(q url.Values, fe *FieldErrors, name string) (string, bool) {
	if len(q[name]) > 1 {
		fe.Add(name, "give it at most once")
		return "", false
	}
	return q.Get(name), q.Get(name) != ""
}

// streamIDParam is ?stream_id= as a stream id; fe says what is wrong with
// it. It reports whether there is a valid one.
func streamIDParam(q url.Values, fe *FieldErrors) (eventlog.StreamID, bool) {
	v, ok := singleParam(q, fe, "stream_id")
	if !ok {
		return eventlog.StreamID{}, false
	}
	s, err := eventlog.ParseStreamID(v)
	if err != nil {
		fe.Add("stream_id", "must be <type>-<uuid>, e.g. vm-0190f3c4-5b7e-7cc1-9a2b-3c4d5e6f7a8b")
		return eventlog.StreamID{}, false
	}
	return s, true
}

// auditScope is the scope an audit query runs in: the caller's tenant, whose
// events the tenant_isolation policy shows, or for a platform administrator
// auditing another tenant the platform_admin_read policy (migration 00009),
// the filter naming that tenant in SQL.
func auditScope(r *http.Request, tenant uuid.UUID) tenantdb.Scope {
	p := PrincipalFrom(r.Context())
	sc := tenantdb.Scope{TenantID: p.TenantID, ActorID: p.UserID}
	if tenant != p.TenantID {
		sc.PlatformAdmin = true // targetTenant let only a platform administrator through
	}
	return sc
}

func (srv *server) audit(w http.ResponseWriter, r *http.Request) {
	tenant, ok := targetTenant(w, r)
	if !ok {
		return
	}
	f, err := auditFilter(r, tenant)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), ndjson) {
		srv.auditExport(w, r, f)
		return
	}
	limit, err := ParseLimit(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	events, err := srv.store.AuditPage(r.Context(), auditScope(r, tenant), f, limit+1)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeEventPage(w, r, events, limit, func(last eventlog.Event) any {
		return auditCursor{Position: last.Position.GlobalPosition}
	})
}

// Export flushing: rows are written through a buffer and pushed to the
// client when it fills or every flushEvery, whichever comes first, so a slow
// trickle of matches still reaches the client promptly.
const (
	exportBuffer = 64 << 10
	flushEvery   = 250 * time.Millisecond
)

// auditExport streams every match as NDJSON. The store reads in chunks,
// each in a short transaction, so a client that stops reading holds no
// database connection, only its export slot (Limits), and only until its
// write deadline: each write extends it by exportWriteTimeout, so a slow
// reader keeps going and a stalled one is dropped. Once the first byte is
// out, a failure can no longer be a problem answer: the connection is
// aborted, so the client sees a broken transfer rather than a clean, short
// export.
func (srv *server) auditExport(w http.ResponseWriter, r *http.Request, f eventstore.AuditFilter) {
	release, ok := srv.exports.acquire(w, r, PrincipalFrom(r.Context()))
	if !ok {
		return
	}
	defer release()
	rc := http.NewResponseController(w)
	deadline := newWriteDeadline(rc, srv.exportWriteTimeout)
	bw := bufio.NewWriterSize(deadlineWriter{w, deadline}, exportBuffer)
	enc := json.NewEncoder(bw)
	started, lastFlush := false, time.Now()
	start := func() {
		started = true
		w.Header().Set("Content-Type", ndjson)
		w.Header().Set("Cache-Control", "no-store")
		deadline.extend()
		w.WriteHeader(http.StatusOK)
	}
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		lastFlush = time.Now()
		deadline.extend()
		return rc.Flush()
	}
	p := PrincipalFrom(r.Context())
	err := srv.store.AuditEach(r.Context(), auditScope(r, f.TenantID), f, func(e eventlog.Event) error {
		if !started {
			start()
		}
		if err := enc.Encode(eventFor(p, e)); err != nil {
			return err
		}
		if time.Since(lastFlush) >= flushEvery {
			return flush()
		}
		return nil
	})
	switch {
	case err != nil && !started:
		WriteError(w, r, err)
	case err != nil:
		panic(http.ErrAbortHandler)
	case !started: // no match: an empty, successful export
		start()
	default:
		if err := flush(); err != nil {
			panic(http.ErrAbortHandler)
		}
	}
}
