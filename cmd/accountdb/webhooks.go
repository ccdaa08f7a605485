package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/accountdb/accountdb/webhooks"
)

// webhookOptions reads the webhook delivery settings from the environment:
// ACCOUNTDB_WEBHOOK_ALLOW_CIDRS, comma-separated ranges webhooks may reach
// although they are loopback, private, link-local or metadata addresses
// (docs/SECURITY.md, "Webhooks").
func webhookOptions() (webhooks.Options, error) {
	allow, err := webhooks.ParseCIDRs(strings.Split(strings.ReplaceAll(os.Getenv("ACCOUNTDB_WEBHOOK_ALLOW_CIDRS"), " ", ""), ","))
	if err != nil {
		return webhooks.Options{}, fmt.Errorf("ACCOUNTDB_WEBHOOK_ALLOW_CIDRS: %w", err)
	}
	return webhooks.Options{Guard: webhooks.Guard{Allow: allow}}, nil
}
