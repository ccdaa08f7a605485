package tenantdb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/tenantdb"
)

func TestServerVersionCheck(t *testing.T) {
	if err := tenantdb.RequireServerVersion(context.Background(), pgtest.New(t).App); err != nil {
		t.Fatalf("the test server: %v", err)
	}
	for num, ok := range map[string]bool{"130000": true, "150004": true, "170000": true, "120018": false, "90624": false, "x": false} {
		err := tenantdb.CheckServerVersion(num, "v"+num)
		if ok != (err == nil) {
			t.Errorf("server_version_num %s: %v, want accepted %v", num, err, ok)
		}
		if err != nil && num != "x" && (!strings.Contains(err.Error(), "v"+num) || !strings.Contains(err.Error(), "PostgreSQL 13")) {
			t.Errorf("server_version_num %s: %q does not name both versions", num, err)
		}
	}
}
