package tenantdb

import "testing"

func TestLoopbackDatabasesConnectWithoutTLSUnlessTheURLAsks(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	cases := map[string]string{
		"postgres://app@127.0.0.1:5432/db":                "postgres://app@127.0.0.1:5432/db?sslmode=disable",
		"postgres://app@localhost/db?application_name=x":  "postgres://app@localhost/db?application_name=x&sslmode=disable",
		"postgres://app@[::1]:5432/db":                    "postgres://app@[::1]:5432/db?sslmode=disable",
		"postgres://app@/db?host=/var/run/postgresql":     "postgres://app@/db?host=%2Fvar%2Frun%2Fpostgresql&sslmode=disable",
		"postgres://app@127.0.0.2:5432,localhost:5433/db": "postgres://app@127.0.0.2:5432,localhost:5433/db?sslmode=disable",
		// Chosen by the URL, remote, partly remote, or not a URL: as written.
		"postgres://app@127.0.0.1:5432/db?sslmode=require": "postgres://app@127.0.0.1:5432/db?sslmode=require",
		"postgres://app@db.example:5432/db":                "postgres://app@db.example:5432/db",
		"postgres://app@10.0.0.5:5432/db":                  "postgres://app@10.0.0.5:5432/db",
		"postgres://app@127.0.0.1:5432,db.example/db":      "postgres://app@127.0.0.1:5432,db.example/db",
		"host=127.0.0.1 user=app dbname=db":                "host=127.0.0.1 user=app dbname=db",
	}
	for in, want := range cases {
		if got := withoutTLSOnLoopback(in); got != want {
			t.Errorf("withoutTLSOnLoopback(%q) = %q, want %q", in, got, want)
		}
	}
	t.Setenv("PGSSLMODE", "require")
	if got := withoutTLSOnLoopback("postgres://app@127.0.0.1/db"); got != "postgres://app@127.0.0.1/db" {
		t.Errorf("with PGSSLMODE set: %q, want the URL as written", got)
	}
}
