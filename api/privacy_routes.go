package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/projections"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
)

// The right to erasure and the right of access (docs/PRIVACY.md).

type eraseRequest struct {
	ConfirmEmail string `json:"confirm_email"`
}

// eraseUser: POST /v1/users/{id}/erase (user:manage) with the user's email as
// confirmation. Their keys are destroyed with the user_erased event.
func (srv *server) eraseUser(w http.ResponseWriter, r *http.Request) {
	tenant, ok := targetTenant(w, r)
	if !ok {
		return
	}
	runIDBodyCommand(w, r, func(o commands.Options, uid uuid.UUID, req eraseRequest) (commands.Result, error) {
		res, err := srv.commands.EraseUser(r.Context(), actorOf(r), o, tenant, uid, req.ConfirmEmail)
		srv.recordForbidden(r, err, auth.PermUserManage)
		return res, err
	})
}

// exportSubject is the person GET /v1/users/{id}/export is about: {id} or
// "me", in targetTenant. The person themself may always export; anyone else
// needs user:manage (a 403 otherwise, recorded like require's). Another
// tenant's user is a 404, as a missing one.
func (srv *server) exportSubject(w http.ResponseWriter, r *http.Request) (tenant, user uuid.UUID, ok bool) {
	p := PrincipalFrom(r.Context())
	if chi.URLParam(r, "id") == "me" {
		return p.TenantID, p.UserID, true
	}
	if tenant, user, ok = targetUser(w, r); !ok {
		return uuid.Nil, uuid.Nil, false
	}
	if (user != p.UserID || tenant != p.TenantID) && !p.Can(auth.PermUserManage) {
		srv.recordDenied(r, auth.PermUserManage)
		WriteProblem(w, r, Forbidden("exporting another user's data requires "+string(auth.PermUserManage)))
		return uuid.Nil, uuid.Nil, false
	}
	return tenant, user, true
}

// exportUser: GET /v1/users/{id}/export, everything held about a person as
// one JSON document: what the read models and side tables hold (profile,
// SSH keys, sessions with their addresses and agents, API tokens, two-factor,
// identity links), then every event of their stream and every event they
// caused, revealed (their own request metadata included; others' left
// out), streamed as the log is read (the export caps and write deadline of
// audit exports apply).
func (srv *server) exportUser(w http.ResponseWriter, r *http.Request) {
	tenant, user, ok := srv.exportSubject(w, r)
	if !ok {
		return
	}
	if err := srv.awaitConsistency(w, r, projections.Users{}.Name()); err != nil {
		WriteError(w, r, err)
		return
	}
	data, err := projections.ReadPersonalData(r.Context(), srv.pool, tenant, user)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	release, ok := srv.exports.acquire(w, r, PrincipalFrom(r.Context()))
	if !ok {
		return
	}
	defer release()
	head, err := json.Marshal(toPersonalDataResponse(data))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	deadline := newWriteDeadline(rc, srv.exportWriteTimeout)
	bw := bufio.NewWriterSize(deadlineWriter{w, deadline}, exportBuffer)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="user-`+user.String()+`.json"`)
	deadline.extend()
	w.WriteHeader(http.StatusOK)
	// The head object without its closing brace, then "events": [...]}.
	_, _ = bw.Write(head[:len(head)-1])
	_, _ = bw.WriteString(`,"events":[`)
	first, lastFlush := true, time.Now()
	write := func(e eventlog.Event) error {
		if e.ActorID != user {
			e.Metadata = eventlog.Metadata{} // another person's request
		}
		b, err := json.Marshal(toEventResponse(e))
		if err != nil {
			return err
		}
		if !first {
			_ = bw.WriteByte(',')
		}
		first = false
		if _, err := bw.Write(b); err != nil {
			return err
		}
		if time.Since(lastFlush) >= flushEvery {
			lastFlush = time.Now()
			deadline.extend()
			if err := bw.Flush(); err != nil {
				return err
			}
			return rc.Flush()
		}
		return nil
	}
	sc := tenantdb.Tenant(tenant)
	own := eventlog.StreamID{Type: domain.StreamUser, ID: user}
	err = srv.store.AuditEach(r.Context(), sc, eventstore.AuditFilter{TenantID: tenant, Stream: &own}, write)
	if err == nil {
		err = srv.store.AuditEach(r.Context(), sc, eventstore.AuditFilter{TenantID: tenant, ActorID: user}, func(e eventlog.Event) error {
			if e.Stream == own {
				return nil // listed above
			}
			return write(e)
		})
	}
	if err == nil {
		_, err = bw.WriteString("]}\n")
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		// The status line is out: abort, so the client sees a broken
		// transfer, never a clean but partial document.
		panic(http.ErrAbortHandler)
	}
}

type personalDataResponse struct {
	ExportedAt    time.Time            `json:"exported_at"`
	User          userResponse         `json:"user"`
	SSHKeys       []exportSSHKey       `json:"ssh_keys"`
	Sessions      []exportSession      `json:"sessions"`
	APITokens     []exportAPIToken     `json:"api_tokens"`
	TwoFactor     map[string]bool      `json:"two_factor"`
	IdentityLinks []exportIdentityLink `json:"identity_links"`
}

type exportSSHKey struct {
	ID          uuid.UUID `json:"id"`
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Fingerprint string    `json:"fingerprint"`
	PublicKey   string    `json:"public_key"`
	CreatedAt   time.Time `json:"created_at"`
}

type exportSession struct {
	ID         uuid.UUID  `json:"id"`
	CreatedAt  time.Time  `json:"created_at"`
	LastSeenAt time.Time  `json:"last_seen_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	EndedAt    *time.Time `json:"ended_at"`
	EndReason  *string    `json:"end_reason"`
	IP         string     `json:"ip"`
	UserAgent  string     `json:"user_agent"`
}

type exportAPIToken struct {
	ID          uuid.UUID  `json:"id"`
	Name        string     `json:"name"`
	Prefix      string     `json:"prefix"`
	Permissions []string   `json:"permissions"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	LastUsedIP  *string    `json:"last_used_ip"`
}

type exportIdentityLink struct {
	ProviderID uuid.UUID `json:"provider_id"`
	Subject    string    `json:"subject"`
	CreatedAt  time.Time `json:"created_at"`
}

func toPersonalDataResponse(d projections.PersonalData) personalDataResponse {
	out := personalDataResponse{ExportedAt: time.Now().UTC(), User: toUserResponse(d.User),
		SSHKeys: []exportSSHKey{}, Sessions: []exportSession{}, APITokens: []exportAPIToken{},
		TwoFactor: map[string]bool{"totp_enabled": d.TOTPEnabled}, IdentityLinks: []exportIdentityLink{}}
	for _, k := range d.SSHKeys {
		out.SSHKeys = append(out.SSHKeys, exportSSHKey{k.ID, k.Name, k.Type, k.Fingerprint, k.PublicKey, k.CreatedAt.UTC()})
	}
	for _, s := range d.Sessions {
		out.Sessions = append(out.Sessions, exportSession{s.ID, s.CreatedAt.UTC(), s.LastSeenAt.UTC(), s.ExpiresAt.UTC(),
			s.EndedAt, s.EndReason, s.IP, s.UserAgent})
	}
	for _, t := range d.APITokens {
		out.APITokens = append(out.APITokens, exportAPIToken{t.ID, t.Name, t.Prefix, t.Permissions, t.CreatedAt.UTC(),
			t.ExpiresAt.UTC(), t.RevokedAt, t.LastUsedAt, t.LastUsedIP})
	}
	for _, l := range d.IdentityLinks {
		out.IdentityLinks = append(out.IdentityLinks, exportIdentityLink{l.ProviderID, l.Subject, l.CreatedAt.UTC()})
	}
	return out
}
