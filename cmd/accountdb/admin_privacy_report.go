package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/accountdb/accountdb/privacy"
	"github.com/google/uuid"
)

// runPrivacyReport: `admin privacy-report [--tenant T]`: where the log still
// holds personal data in plaintext (events recorded before encryption), and
// which of those events belong to people already erased: what their erasure
// could not reach (docs/PRIVACY.md, "Upgrading").
func runPrivacyReport(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("admin privacy-report", flag.ContinueOnError)
	cfg := bindConfig(fs)
	tenantArg := fs.String("tenant", "", "only this tenant (default: every tenant)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	var tenant uuid.UUID
	if *tenantArg != "" {
		var err error
		if tenant, err = uuid.Parse(*tenantArg); err != nil {
			return fmt.Errorf("--tenant: %w", err)
		}
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	pool, err := cfg.openAppPool(ctx, 2, "accountdb-privacy-report")
	if err != nil {
		return err
	}
	defer pool.Close()
	r, err := privacy.PlaintextReport(ctx, pool, tenant)
	if err != nil {
		return err
	}
	return writePrivacyReport(stdout, r)
}

func writePrivacyReport(w io.Writer, r privacy.Report) error {
	if len(r.Groups) == 0 {
		fmt.Fprintln(w, "no event holds personal data in plaintext")
		return nil
	}
	fmt.Fprintln(w, "events holding personal data in plaintext (recorded before encryption):")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tTYPE\tEVENTS\tFIRST\tLAST")
	for _, g := range r.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", g.TenantID, g.EventType, g.Events, g.First.UTC().Format(time.RFC3339), g.Last.UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Erased) == 0 {
		fmt.Fprintln(w, "\nnone of them belongs to an erased person")
		return nil
	}
	fmt.Fprintln(w, "\nof which events of erased people (their erasure cleaned the read models but cannot rewrite these):")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POSITION\tTENANT\tSUBJECT\tSTREAM\tTYPE\tRECORDED")
	for _, e := range r.Erased {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.GlobalPosition, e.TenantID, e.Subject, e.StreamID, e.EventType, e.RecordedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}
