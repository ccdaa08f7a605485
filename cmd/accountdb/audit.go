package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// errChainsBroken makes `audit verify` exit non-zero once it has printed
// what it found.
var errChainsBroken = errors.New("audit verify: the event log has broken hash chains")

// runAudit: `audit verify [--stream <id>] [--tenant <uuid>]`.
func runAudit(ctx context.Context, args []string, stdout, _ io.Writer) error {
	const usage = "usage: accountdb audit verify [--stream <type>-<uuid>] [--tenant <uuid>]"
	if len(args) == 0 || args[0] != "verify" {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	cfg := bindConfig(fs)
	streamFlag := fs.String("stream", "", "verify one stream, <type>-<uuid>")
	tenantFlag := fs.String("tenant", "", "verify one tenant's streams")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(usage)
	}
	var f eventstore.VerifyFilter
	if *streamFlag != "" {
		st, err := eventstore.ParseStreamID(*streamFlag)
		if err != nil {
			return fmt.Errorf("--stream: %w", err)
		}
		f.Stream = st
	}
	if *tenantFlag != "" {
		id, err := uuid.Parse(*tenantFlag)
		if err != nil || id == uuid.Nil {
			return fmt.Errorf("--tenant %q is not a tenant id", *tenantFlag)
		}
		f.TenantID = id
	}
	appURL, err := cfg.appURL()
	if err != nil {
		return err
	}
	pool, err := tenantdb.Open(ctx, appURL, tenantdb.PoolOptions{MaxConns: 2, ApplicationName: "accountdb-audit"})
	if err != nil {
		return err
	}
	defer pool.Close()
	return auditVerify(ctx, eventstore.New(pool, nil), f, stdout)
}

// auditVerify checks the chains f selects, prints the report, and returns
// errChainsBroken when any link is broken.
func auditVerify(ctx context.Context, store *eventstore.Store, f eventstore.VerifyFilter, out io.Writer) error {
	rep, err := store.VerifyChains(ctx, f)
	if err != nil {
		return err
	}
	printVerifyReport(out, rep)
	if !rep.OK() {
		return errChainsBroken
	}
	return nil
}

func printVerifyReport(out io.Writer, rep eventstore.VerifyReport) {
	fmt.Fprintf(out, "checked %d events in %d streams\n", rep.EventsChecked, rep.StreamsChecked)
	if rep.OK() {
		fmt.Fprintln(out, "OK: every hash chain is intact")
		return
	}
	fmt.Fprintf(out, "BROKEN: %d streams have a broken chain (the first break of each is shown)\n", len(rep.Broken))
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tTENANT\tVERSION\tPOSITION\tREASON\tEXPECTED\tSTORED")
	for _, b := range rep.Broken {
		pos := "-"
		if b.Position != 0 {
			pos = fmt.Sprint(b.Position)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", b.Stream, b.TenantID, b.Version, pos, b.Reason,
			hexOrDash(b.Expected), hexOrDash(b.Stored))
	}
	tw.Flush()
	fmt.Fprintln(out, "content_changed: the event was altered; link_broken: the event before it was replaced;")
	fmt.Fprintln(out, "gap: events from VERSION on are missing (POSITION is the next surviving event). See docs/AUDIT.md.")
}

func hexOrDash(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return fmt.Sprintf("%x", b)
}
