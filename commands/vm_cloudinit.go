package commands

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/shacrypt"
	"github.com/google/uuid"
)

// CloudInitRequest is cloud_init as a client sends it: settings, inline
// keys, and ids of the acting user's own SSH keys.
type CloudInitRequest struct {
	domain.CloudInitInput
	SSHKeyIDs []uuid.UUID
}

// hashCloudInitPassword is the SHA-512 crypt cloud-init and Proxmox take;
// the clear text goes no further than this call.
func hashCloudInitPassword(pw string) string { return shacrypt.SHA512(pw) }

// resolveSSHKeyIDs turns key ids into the acting user's public keys. An id
// that is not one of the actor's own keys (another user's, or none) is a
// 400 naming it, as cloud_init.ssh_key_ids[i]: whose key it is stays
// unsaid.
func (h *Handler) resolveSSHKeyIDs(ctx context.Context, a Actor, ids []uuid.UUID) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	u, err := h.LoadUser(ctx, a.TenantID, a.UserID)
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	var keys []string
	for i, id := range ids {
		found := false
		for _, k := range u.SSHKeys {
			if k.ID == id && u.Exists() {
				keys, found = append(keys, k.PublicKey), true
				break
			}
		}
		if !found {
			fields[fmt.Sprintf("cloud_init.ssh_key_ids[%d]", i)] = "is not one of your SSH keys (GET /v1/users/me/ssh-keys)"
		}
	}
	if len(fields) > 0 {
		return nil, &domain.ValidationError{Fields: fields}
	}
	return keys, nil
}

// newCloudInit validates a creation's cloud_init for a VM of kind named
// vmName: the key ids resolved to the actor's keys (after the inline keys,
// so that cloud_init.ssh_keys[i] numbers what the client sent), the
// password hashed at once.
func (h *Handler) newCloudInit(ctx context.Context, a Actor, kind domain.VMKind, vmName string, req *CloudInitRequest) (*domain.CloudInit, error) {
	if req == nil {
		return nil, nil
	}
	in := req.CloudInitInput
	if err := domain.CheckCloudInitCreate(kind, in); err != nil {
		return nil, err
	}
	resolved, err := h.resolveSSHKeyIDs(ctx, a, req.SSHKeyIDs)
	if err != nil {
		return nil, err
	}
	in.SSHKeys = append(append([]string(nil), in.SSHKeys...), resolved...)
	ci, err := domain.NewCloudInit(in, vmName, hashCloudInitPassword)
	if err != nil {
		return nil, err
	}
	return &ci, nil
}

// mergeValidation joins the fields of two validation errors into one, so a
// request hears of all its bad fields at once; any other error wins.
func mergeValidation(a, b error) error {
	va, aok := a.(*domain.ValidationError)
	vb, bok := b.(*domain.ValidationError)
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case !aok:
		return a
	case !bok:
		return b
	}
	fields := map[string]string{}
	for k, v := range va.Fields {
		fields[k] = v
	}
	for k, v := range vb.Fields {
		fields[k] = v
	}
	return &domain.ValidationError{Fields: fields}
}

// CloudInitUpdate is the cloud-init part of PATCH /v1/vms/{id}.
type CloudInitUpdate struct {
	domain.CloudInitChange
	// SSHKeyIDs, when not nil, are the actor's keys to give the VM, after
	// the inline keys; either being set replaces the whole list.
	SSHKeyIDs *[]uuid.UUID
}

// UpdateVMCloudInit requests new cloud-init settings; Proxmox gets them at
// once and the guest at its next boot.
func (h *Handler) UpdateVMCloudInit(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, u CloudInitUpdate) (Result, error) {
	ch := u.CloudInitChange
	if u.SSHKeyIDs != nil {
		resolved, err := h.resolveSSHKeyIDs(ctx, a, *u.SSHKeyIDs)
		if err != nil {
			return Result{}, err
		}
		var keys []string
		if ch.SSHKeys != nil {
			keys = append(keys, *ch.SSHKeys...)
		}
		keys = append(keys, resolved...)
		ch.SSHKeys = &keys
	}
	if ch.Empty() {
		return Result{}, &domain.ValidationError{Fields: map[string]string{"cloud_init": "names nothing to change"}}
	}
	return h.onOpenTenantVM(ctx, a, o, tenant, id, func(v *domain.VM) ([]domain.Event, error) {
		return v.UpdateCloudInit(ch, hashCloudInitPassword)
	})
}

// RebuildVM requests the VM's guest re-created from template ("" keeps the
// VM's own), which must exist for the VM's kind on its cluster.
func (h *Handler) RebuildVM(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, template string) (Result, error) {
	if h.tables == nil {
		return Result{}, ErrNoTables
	}
	if template != "" {
		v, err := h.LoadVM(ctx, tenant, id)
		if err != nil {
			return Result{}, err
		}
		if !v.Exists() {
			return Result{}, domain.ErrNotFound
		}
		_, found, err := h.tables.Inventory().ClusterOffering(ctx, tenant, template, string(v.Kind), v.ClusterID)
		if err != nil {
			return Result{}, err
		}
		if !found {
			return Result{}, &domain.ValidationError{Fields: map[string]string{"template": "no " + string(v.Kind) + " template of that name on the VM's cluster (see GET /v1/templates)"}}
		}
	}
	return h.onOpenTenantVM(ctx, a, o, tenant, id, func(v *domain.VM) ([]domain.Event, error) { return v.Rebuild(template) })
}
