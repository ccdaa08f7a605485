package commands

import (
	"context"

	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// sshKeyNamespace derives a key's id from its user and fingerprint.
var sshKeyNamespace = uuid.MustParse("8a3f4c52-61d4-4c1e-9d0e-5b6f0e7a2c11")

// AddSSHKey adds a public key to the acting user's own keys; the result's
// ID is the key's. The events go on the user's stream, so a duplicate is
// refused against the user's state (by fingerprint) at the version the key
// is appended at. The id is derived from the user and the fingerprint, so
// a replayed request answers the same id.
func (h *Handler) AddSSHKey(ctx context.Context, a Actor, o Options, name, publicKey string) (Result, error) {
	var keyID uuid.UUID
	if key, err := domain.ParseSSHPublicKey(publicKey); err == nil {
		keyID = uuid.NewSHA1(sshKeyNamespace, []byte(a.UserID.String()+"|"+key.Fingerprint))
	}
	res, err := h.onOwnUser(ctx, a, o, func(u *domain.User) ([]domain.Event, error) {
		return u.AddSSHKey(keyID, name, publicKey)
	})
	if err != nil {
		return Result{}, err
	}
	res.ID = keyID
	return res, nil
}

// RemoveSSHKey removes one of the acting user's own keys; a key that is not
// theirs is not found.
func (h *Handler) RemoveSSHKey(ctx context.Context, a Actor, o Options, keyID uuid.UUID) (Result, error) {
	return h.onOwnUser(ctx, a, o, func(u *domain.User) ([]domain.Event, error) {
		return u.RemoveSSHKey(keyID)
	})
}

// onOwnUser loads the actor's own user, decides and appends. Keys touch no
// side table, so unlike onUserWith there is no credentials row to keep in step.
func (h *Handler) onOwnUser(ctx context.Context, a Actor, o Options, decide func(*domain.User) ([]domain.Event, error)) (Result, error) {
	if err := h.tenantAcceptsCommands(ctx, a.TenantID); err != nil {
		return Result{}, err
	}
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		u, err := h.LoadUser(ctx, a.TenantID, a.UserID)
		if err != nil {
			return change{}, err
		}
		events, err := decide(u)
		if err != nil {
			return change{}, err
		}
		return change{tenant: a.TenantID, stream: userStream(a.UserID), version: u.Version, events: events}, nil
	})
}
