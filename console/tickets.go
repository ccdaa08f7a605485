package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/accountdb/accountdb/vault"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TicketTTL is how long a console ticket may wait for its WebSocket.
const TicketTTL = 30 * time.Second

// ErrTicket is a ticket that is unknown, used, expired or presented from
// another client address; the four are not told apart.
var ErrTicket = errors.New("console: invalid ticket")

// Ticket is what a console ticket stands for. SessionID is the credential
// the ticket was asked with: a session, or an API token's id.
type Ticket struct {
	ConsoleID, TenantID, UserID, SessionID, VMID, ClusterID uuid.UUID
	ClientIP                                                string
	Protocol                                                string
	Node                                                    string
	Kind                                                    domain.VMKind
	VMIDNumber                                              int
	Grant                                                   Grant
	ExpiresAt                                               time.Time
}

// Tickets keeps console tickets in PostgreSQL, each scoped to its tenant.
type Tickets struct {
	Pool  *pgxpool.Pool
	Vault *vault.Vault
}

// The ticket string carries its tenant (for the row-level security scope)
// and 32 random bytes: base64url(tenant || random).
func newTicketString(tenant uuid.UUID) (string, error) {
	b := make([]byte, 16+32)
	copy(b, tenant[:])
	if _, err := rand.Read(b[16:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func ticketTenant(s string) (uuid.UUID, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 48 {
		return uuid.Nil, false
	}
	id, _ := uuid.FromBytes(b[:16])
	return id, id != uuid.Nil
}

func ticketHash(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

func sealBinding(t Ticket) string { return "console " + t.ConsoleID.String() + " " + t.VMID.String() }

// Issue stores t and returns its ticket string and expiry; expired tickets
// of the tenant are swept on the way.
func (s *Tickets) Issue(ctx context.Context, t Ticket) (string, time.Time, error) {
	str, err := newTicketString(t.TenantID)
	if err != nil {
		return "", time.Time{}, err
	}
	sealed, err := s.Vault.Seal(t.Grant.Ticket, sealBinding(t))
	if err != nil {
		return "", time.Time{}, err
	}
	var expires time.Time
	err = tenantdb.InTx(ctx, s.Pool, tenantdb.Tenant(t.TenantID), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM console_tickets WHERE tenant_id = $1 AND expires_at < now() - interval '1 minute'`, t.TenantID); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO console_tickets (tenant_id, ticket_hash, console_id, user_id, session_id, vm_id,
			client_ip, protocol, cluster_id, node, kind, vmid, pve_user, pve_port, sealed_ticket, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, now() + $16::interval)
			RETURNING expires_at`,
			t.TenantID, ticketHash(str), t.ConsoleID, t.UserID, t.SessionID, t.VMID, t.ClientIP, t.Protocol, t.ClusterID,
			t.Node, string(t.Kind), t.VMIDNumber, t.Grant.User, t.Grant.Port, sealed,
			fmt.Sprintf("%d milliseconds", TicketTTL.Milliseconds())).Scan(&expires)
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("console: issue ticket: %w", err)
	}
	return str, expires.UTC(), nil
}

// Redeem uses a ticket once: it must exist, be unused and unexpired, and
// come from the address it was issued to.
func (s *Tickets) Redeem(ctx context.Context, str, clientIP string) (Ticket, error) {
	tenant, ok := ticketTenant(str)
	if !ok {
		return Ticket{}, ErrTicket
	}
	var t Ticket
	var kind, sealed string
	err := tenantdb.InTx(ctx, s.Pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `UPDATE console_tickets SET used_at = now()
			WHERE tenant_id = $1 AND ticket_hash = $2 AND used_at IS NULL AND expires_at > now() AND client_ip = $3
			RETURNING console_id, tenant_id, user_id, session_id, vm_id, cluster_id, client_ip, protocol, node, kind, vmid,
				pve_user, pve_port, sealed_ticket, expires_at`,
			tenant, ticketHash(str), clientIP).Scan(&t.ConsoleID, &t.TenantID, &t.UserID, &t.SessionID, &t.VMID, &t.ClusterID,
			&t.ClientIP, &t.Protocol, &t.Node, &kind, &t.VMIDNumber, &t.Grant.User, &t.Grant.Port, &sealed, &t.ExpiresAt)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Ticket{}, ErrTicket
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("console: redeem ticket: %w", err)
	}
	t.Kind = domain.VMKind(kind)
	if t.Grant.Ticket, err = s.Vault.Open(sealed, sealBinding(t)); err != nil {
		return Ticket{}, fmt.Errorf("console: open the proxmox ticket: %w", err)
	}
	return t, nil
}
