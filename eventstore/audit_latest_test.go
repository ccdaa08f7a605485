package eventstore_test

import (
	"context"
	"testing"

	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// TestAuditLatestReadsTheNewestOfOneTenant: the last n events matching the
// filter, oldest first; a stream filter keeps to it; another tenant's
// events are not read, not even by a filter that names that tenant under
// this tenant's scope (row-level security, not the filter, keeps them out).
func TestAuditLatestReadsTheNewestOfOneTenant(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tenant, other := uuid.New(), uuid.New()
	a, b := stream(t), stream(t)
	appendN(t, s, tenant, a, 7, 3)
	appendN(t, s, tenant, b, 2, 2)
	appendN(t, s, other, stream(t), 4, 4)

	all, err := s.AuditLatest(ctx, tenantdb.Tenant(tenant), eventstore.AuditFilter{TenantID: tenant}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 || all[3].Stream != b || all[4].Stream != b || all[4].StreamVersion != 2 {
		t.Fatalf("the newest five: %+v", all)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Position.GlobalPosition <= all[i-1].Position.GlobalPosition {
			t.Fatalf("not oldest first at %d", i)
		}
	}
	of, err := s.AuditLatest(ctx, tenantdb.Tenant(tenant), eventstore.AuditFilter{TenantID: tenant, Stream: &a, After: 1 << 40}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(of) != 4 || of[0].StreamVersion != 4 || of[3].StreamVersion != 7 {
		t.Fatalf("stream a's newest four (After ignored): %+v", of)
	}
	leak, err := s.AuditLatest(ctx, tenantdb.Tenant(tenant), eventstore.AuditFilter{TenantID: other}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(leak) != 0 {
		t.Fatalf("read %d events of another tenant", len(leak))
	}
}
