package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestUnknownSubcommandAndBadConfig(t *testing.T) {
	if err := run(context.Background(), []string{"frobnicate"}, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown subcommand accepted")
	}
	bad := &config{DatabaseURL: "mysql://x", HTTPAddr: "nope", DataDir: "", LogLevel: "loud"}
	err := bad.validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"DATABASE_URL", "ACCOUNTDB_HTTP_ADDR", "ACCOUNTDB_DATA_DIR", "log level"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("config error does not mention %s: %v", want, err)
		}
	}
}
