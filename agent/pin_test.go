package agent

import (
	"strings"
	"testing"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/google/uuid"
)

// The agent talks to a cluster only over TLS it can verify: the pinned
// certificate, or one the system's CAs vouch for. A registration pinning
// another certificate, pinning none for a self-signed one, or from before
// insecure_tls was refused, gets no request through, and the result says why.
func TestClusterCertificateIsPinned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(nil)
	e.waitInventory()

	other, err := pvesim.StartServer(pvesim.Options{Nodes: 1}, "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	for _, c := range []struct {
		name string
		reg  func(sealed string) *domain.ClusterRegistered
		want string
	}{
		{"another certificate's fingerprint", func(sealed string) *domain.ClusterRegistered {
			return &domain.ClusterRegistered{TLSFingerprint: domain.CertificateFingerprint(other.Certificate()), SealedSecret: sealed}
		}, "tls_fingerprint"},
		{"no fingerprint for a self-signed certificate", func(sealed string) *domain.ClusterRegistered {
			return &domain.ClusterRegistered{SealedSecret: sealed}
		}, "certificate"},
		{"insecure_tls from an old registration", func(sealed string) *domain.ClusterRegistered {
			return &domain.ClusterRegistered{InsecureTLS: true, SealedSecret: sealed}
		}, "insecure_tls"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := uuid.New()
			sealed, err := e.vault.Seal(pvesim.DefaultTokenSecret, domain.ClusterSecretBinding(id, e.srv.URL()))
			if err != nil {
				t.Fatal(err)
			}
			reg := c.reg(sealed)
			reg.Name, reg.APIURL, reg.TokenID = "pinned-"+id.String()[:8], e.srv.URL(), pvesim.DefaultTokenID
			e.publish(domain.PlatformTenant, eventlog.StreamID{Type: domain.StreamCluster, ID: id}, reg)
			req := e.createReq(domain.KindQEMU, "pinned", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})
			req.ClusterID = id
			vm := uuid.New()
			r := e.result(e.request(vm, req))
			if r.Succeeded || !strings.Contains(r.Error, c.want) {
				t.Fatalf("want a failure mentioning %q, got %+v", c.want, r)
			}
			if len(e.tagged(vm)) != 0 {
				t.Fatal("a guest was created through an unverified connection")
			}
		})
	}
}
