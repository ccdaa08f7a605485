package acceptance_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
)

// TestPooledConnectionsKeepTenantsApart interleaves two tenants' requests on
// the service's connection pool and checks that no answer carries the other
// tenant's rows, and that no pooled connection keeps a tenant scope once its
// request is done.
func TestPooledConnectionsKeepTenantsApart(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	pa := s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)
	paTok := s.Login(t, pa).AccessToken

	type side struct {
		tenant uuid.UUID
		token  string
		users  map[uuid.UUID]bool
	}
	var sides []*side
	for _, name := range []string{"pool-a", "pool-b"} {
		sd := &side{tenant: s.Tenant(t, name), users: map[uuid.UUID]bool{}}
		admin := s.User(t, sd.tenant, auth.RoleTenantAdmin)
		sd.users[admin.ID] = true
		for range 4 {
			sd.users[s.User(t, sd.tenant, auth.RoleViewer).ID] = true
		}
		sd.token = s.Login(t, admin).AccessToken
		for id := range sd.users {
			waitUser(t, s, paTok, sd.tenant, id, "active")
		}
		sides = append(sides, sd)
	}

	const workers, rounds = 50, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				sd := sides[(w+i)%2]
				if err := checkList(s, sd.token, sd.tenant, sd.users); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// No pooled connection carries a scope out of its transaction.
	ctx := context.Background()
	conns := s.Sys.Pool.AcquireAllIdle(ctx)
	if len(conns) == 0 {
		t.Fatal("no idle pooled connections to inspect")
	}
	for _, c := range conns {
		for _, setting := range []string{"app.tenant_id", "app.platform_admin", "app.credential_lookup", "app.actor_id"} {
			var v *string
			if err := c.QueryRow(ctx, `SELECT current_setting($1, true)`, setting).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v != nil && *v != "" {
				t.Errorf("pooled connection %d keeps %s = %q", c.Conn().PgConn().PID(), setting, *v)
			}
		}
		c.Release()
	}
	// And without a scope, the service role sees no tenant's rows.
	var n int
	if err := s.Sys.Pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("an unscoped query on the pool sees %d users", n)
	}
}

// checkList lists tenant's users with token and checks it holds exactly them.
func checkList(s *stacktest.Stack, token string, tenant uuid.UUID, want map[uuid.UUID]bool) error {
	req, err := http.NewRequest(http.MethodGet, s.URL+"/v1/users?limit=200", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var l userList
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("tenant %s: status %d", tenant, resp.StatusCode)
	}
	if err := decodeJSON(resp, &l); err != nil {
		return err
	}
	if len(l.Items) != len(want) {
		return fmt.Errorf("tenant %s: %d users, want %d", tenant, len(l.Items), len(want))
	}
	for _, u := range l.Items {
		if u.TenantID != tenant || !want[u.ID] {
			return fmt.Errorf("tenant %s's list holds %+v", tenant, u)
		}
	}
	return nil
}
