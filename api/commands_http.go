package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/accountdb/accountdb/commands"
	"github.com/google/uuid"
)

// MaxIdempotencyKeyLength bounds the Idempotency-Key header.
const MaxIdempotencyKeyLength = 200

// commandOptions reads Idempotency-Key and If-Match, and fingerprints the
// request so that a key reused for another request is refused: everything
// that makes one request differ from another goes in (method, path, the
// query string, which names the tenant of a platform administrator's
// command, and the decoded body, passwords included). The fingerprint is
// stored with the command, so it is keyed (HMAC-SHA-256 under a server
// key): whoever reads the commands table cannot test guesses of a password
// against it.
func commandOptions(r *http.Request, body any) (commands.Options, error) {
	var o commands.Options
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		if !validIdempotencyKey(k) {
			return o, BadRequest("Idempotency-Key is invalid", map[string]string{"Idempotency-Key": "1 to 200 visible ASCII characters"})
		}
		o.IdempotencyKey = k
		b, err := json.Marshal(body)
		if err != nil {
			return o, err
		}
		o.RequestHash = requestFingerprint(r, b)
	}
	if m := r.Header.Get("If-Match"); m != "" {
		v, ok := parseIfMatch(m)
		if !ok {
			return o, BadRequest("If-Match must be a stream version", map[string]string{"If-Match": `a quoted positive integer, e.g. "3"`})
		}
		o.IfMatch = v
	}
	return o, nil
}

// requestFingerprint is the keyed hash of the request's method, path,
// query (in canonical order) and decoded body b.
func requestFingerprint(r *http.Request, b []byte) []byte {
	var key []byte
	if e := envFrom(r.Context()); e != nil {
		key = e.fingerprints
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(r.Method + " " + r.URL.Path + "?" + r.URL.Query().Encode() + "\n"))
	m.Write(b)
	return m.Sum(nil)
}

// validIdempotencyKey: 1 to MaxIdempotencyKeyLength visible ASCII characters.
func validIdempotencyKey(k string) bool {
	return k != "" && len(k) <= MaxIdempotencyKeyLength &&
		!strings.ContainsFunc(k, func(c rune) bool { return c < 0x21 || c > 0x7e })
}

// parseIfMatch reads an If-Match stream version: a positive integer, quoted
// or not, weak (W/) or not.
func parseIfMatch(m string) (int64, bool) {
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(m, "W/"), `"`), 10, 64)
	return v, err == nil && v >= 1
}

// parseConsistencyToken reads an X-Consistency-Token: a global position
// (0: nothing to wait for).
func parseConsistencyToken(v string) (int64, bool) {
	p, err := strconv.ParseInt(v, 10, 64)
	return p, err == nil && p >= 0
}

// runCommand runs one command: its options from the headers and the request
// fingerprint, then the 202 answer with its consistency token (and Location
// when location is set), or the problem the command failed with.
func runCommand(w http.ResponseWriter, r *http.Request, fingerprint any, location func(commands.Result) string,
	do func(commands.Options) (commands.Result, error)) {
	o, err := commandOptions(r, fingerprint)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	res, err := do(o)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	loc := ""
	if location != nil {
		loc = location(res)
	}
	writeAccepted(w, res, loc)
}

// runIDCommand runs a command that takes no body on the resource the path's
// {id} names: a malformed id is a 404 and a body other than {} a 400, before
// runCommand (with no fingerprint) calls do with the id.
func runIDCommand(w http.ResponseWriter, r *http.Request, do func(o commands.Options, id uuid.UUID) (commands.Result, error)) {
	rid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	if err := decodeEmptyBody(w, r); err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, nil, nil, func(o commands.Options) (commands.Result, error) {
		return do(o, rid)
	})
}

// runIDBodyCommand runs a command with a JSON body on the resource the
// path's {id} names: a malformed id is a 404, then the body is decoded
// strictly (DecodeJSON) into a T, which is also the request's fingerprint.
func runIDBodyCommand[T any](w http.ResponseWriter, r *http.Request,
	do func(o commands.Options, id uuid.UUID, req T) (commands.Result, error)) {
	rid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	var req T
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, req, nil, func(o commands.Options) (commands.Result, error) {
		return do(o, rid, req)
	})
}

// decodeEmptyBody accepts a command without a body, or with an empty JSON
// object; anything else in the body is refused like any unknown field.
func decodeEmptyBody(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
		return nil
	}
	var empty struct{}
	return DecodeJSON(w, r, &empty)
}

// accepted is the answer to every command (API.md).
type accepted struct {
	ID            string `json:"id"`
	StreamVersion int64  `json:"stream_version"`
	Position      int64  `json:"position"`
}

// writeAccepted answers 202 with the command's result, its consistency
// token and, for a creation, the new resource's location.
func writeAccepted(w http.ResponseWriter, res commands.Result, location string) {
	if location != "" {
		w.Header().Set("Location", location)
	}
	w.Header().Set("X-Consistency-Token", strconv.FormatInt(res.Position, 10))
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusAccepted, accepted{ID: res.ID.String(), StreamVersion: res.StreamVersion, Position: res.Position})
}

// ConsistencyWait bounds how long a query waits for its read model to catch
// up with the X-Consistency-Token it was sent.
const ConsistencyWait = 5 * time.Second

// awaitConsistency implements read-your-writes: with X-Consistency-Token: P
// the query waits (bounded) until the projector has applied position P, and
// otherwise answers what it has with X-Consistency: stale.
func (srv *server) awaitConsistency(w http.ResponseWriter, r *http.Request, projector string) error {
	v := r.Header.Get("X-Consistency-Token")
	if v == "" {
		return nil
	}
	p, ok := parseConsistencyToken(v)
	if !ok {
		return BadRequest("X-Consistency-Token must be a position", map[string]string{"X-Consistency-Token": "a non-negative integer"})
	}
	if p == 0 {
		return nil
	}
	pos, err := srv.store.PositionOf(r.Context(), p)
	if err != nil {
		w.Header().Set("X-Consistency", "stale")
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), ConsistencyWait)
	defer cancel()
	if err := srv.checkpoints.WaitFor(ctx, srv.pool, projector, pos); err != nil {
		w.Header().Set("X-Consistency", "stale")
	}
	return nil
}
