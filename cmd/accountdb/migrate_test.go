package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/pgtest"
)

// migrate checks the server's version before it migrates: the test
// server passes, and a server it cannot reach is named with what to do.
func TestMigrateChecksThePostgresVersionFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := requirePostgresVersion(ctx, pgtest.New(t).AdminURL); err != nil {
		t.Fatalf("the test server: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	err = requirePostgresVersion(ctx, fmt.Sprintf("postgres://postgres:secret@127.0.0.1:%d/postgres", port))
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("unreachable server: %v, want a message naming DATABASE_URL without the password", err)
	}
}
