package api

import (
	"fmt"
	"net/http"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/projections"
	"github.com/google/uuid"
)

// cloudInitBody is POST /v1/vms's cloud_init (API.md, "Access and
// addresses"). The password is in clear here only: the command hashes it
// at once, and only the hash reaches an event.
type cloudInitBody struct {
	User         string   `json:"user"`
	SSHKeyIDs    []string `json:"ssh_key_ids"`
	SSHKeys      []string `json:"ssh_keys"`
	Password     string   `json:"password"`
	Hostname     string   `json:"hostname"`
	Nameservers  []string `json:"nameservers"`
	SearchDomain string   `json:"search_domain"`
}

// cloudInitPatch is PATCH /v1/vms/{id}'s cloud_init: absent keys stay.
type cloudInitPatch struct {
	User         *string   `json:"user"`
	SSHKeyIDs    *[]string `json:"ssh_key_ids"`
	SSHKeys      *[]string `json:"ssh_keys"`
	Password     *string   `json:"password"`
	Nameservers  *[]string `json:"nameservers"`
	SearchDomain *string   `json:"search_domain"`
}

// parseKeyIDs reads cloud_init.ssh_key_ids; a malformed one is a 400
// naming it.
func parseKeyIDs(ids []string) ([]uuid.UUID, error) {
	out := make([]uuid.UUID, len(ids))
	fields := map[string]string{}
	for i, s := range ids {
		id, err := uuid.Parse(s)
		if err != nil {
			fields[fmt.Sprintf("cloud_init.ssh_key_ids[%d]", i)] = "must be the id of one of your SSH keys (a UUID)"
		}
		out[i] = id
	}
	if len(fields) > 0 {
		return nil, &domain.ValidationError{Fields: fields}
	}
	return out, nil
}

// toCloudInitRequest is the command's form of a creation's cloud_init.
func (b *cloudInitBody) toCloudInitRequest() (*commands.CloudInitRequest, error) {
	if b == nil {
		return nil, nil
	}
	ids, err := parseKeyIDs(b.SSHKeyIDs)
	if err != nil {
		return nil, err
	}
	return &commands.CloudInitRequest{SSHKeyIDs: ids, CloudInitInput: domain.CloudInitInput{User: b.User, SSHKeys: b.SSHKeys,
		Password: b.Password, Hostname: b.Hostname, Nameservers: b.Nameservers, SearchDomain: b.SearchDomain}}, nil
}

// updateVMCloudInit is PATCH /v1/vms/{id} with cloud_init: the settings go
// to Proxmox now and to the guest at its next boot.
func (srv *server) updateVMCloudInit(r *http.Request, o commands.Options, vid uuid.UUID, p *cloudInitPatch) (commands.Result, error) {
	u := commands.CloudInitUpdate{CloudInitChange: domain.CloudInitChange{User: p.User, SSHKeys: p.SSHKeys, Password: p.Password,
		Nameservers: p.Nameservers, SearchDomain: p.SearchDomain}}
	if p.SSHKeyIDs != nil {
		ids, err := parseKeyIDs(*p.SSHKeyIDs)
		if err != nil {
			return commands.Result{}, err
		}
		u.SSHKeyIDs = &ids
	}
	return srv.commands.UpdateVMCloudInit(r.Context(), actorOf(r), o, PrincipalFrom(r.Context()).TenantID, vid, u)
}

type rebuildRequest struct {
	Template string `json:"template"`
}

// rebuildVM is POST /v1/vms/{id}/actions/rebuild.
func (srv *server) rebuildVM(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	runIDBodyCommand(w, r, func(o commands.Options, vid uuid.UUID, req rebuildRequest) (commands.Result, error) {
		return srv.commands.RebuildVM(r.Context(), actorOf(r), o, p.TenantID, vid, req.Template)
	})
}

// cloudInitOf is the read model's cloud-init of a VM as GET shows it.
func cloudInitOf(v projections.VMView) *projections.VMCloudInitView {
	if v.CloudInit == nil {
		return nil
	}
	c := *v.CloudInit
	if c.SSHKeyFingerprints == nil {
		c.SSHKeyFingerprints = []string{}
	}
	return &c
}
