package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// errChainsBroken makes `audit verify` exit non-zero once it has printed
// what it found.
var errChainsBroken = errors.New("audit verify: the event log has broken hash chains")

// errAnchorMismatch makes `audit verify --anchor` exit non-zero when the log
// no longer matches an anchor.
var errAnchorMismatch = errors.New("audit verify: the event log no longer matches an anchor")

const auditUsage = `usage: accountdb audit verify [--stream <type>-<uuid>] [--tenant <uuid>] [--anchor <file>]...
       accountdb audit anchor [--tenant <uuid>] [--out <file>]`

// anchorFiles is the repeatable --anchor flag.
type anchorFiles []string

func (a *anchorFiles) String() string     { return strings.Join(*a, ",") }
func (a *anchorFiles) Set(v string) error { *a = append(*a, v); return nil }

// runAudit: `audit verify` and `audit anchor`.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "anchor") {
		return errors.New(auditUsage)
	}
	verb := args[0]
	fs := flag.NewFlagSet("audit "+verb, flag.ContinueOnError)
	cfg := bindConfig(fs)
	tenantFlag := fs.String("tenant", "", "only this tenant's streams")
	var streamFlag, outFlag *string
	var anchors anchorFiles
	if verb == "verify" {
		streamFlag = fs.String("stream", "", "verify one stream, <type>-<uuid>")
		fs.Var(&anchors, "anchor", "also check the log against this anchor file (repeatable); see docs/AUDIT.md")
	} else {
		outFlag = fs.String("out", "-", "where to write the anchor (- is standard output); keep it on write-once storage")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(auditUsage)
	}
	var f eventstore.VerifyFilter
	if streamFlag != nil && *streamFlag != "" {
		st, err := eventlog.ParseStreamID(*streamFlag)
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
	// Anchors are read before anything is checked: a missing or altered
	// file is a usage error, not a verdict on the log.
	var loaded []eventstore.Anchor
	for _, path := range anchors {
		a, err := readAnchor(path)
		if err != nil {
			return err
		}
		loaded = append(loaded, a)
	}
	pool, err := cfg.openAppPool(ctx, 2, "accountdb-audit")
	if err != nil {
		return err
	}
	defer pool.Close()
	store := eventstore.New(pool, nil)
	if verb == "anchor" {
		return auditAnchor(ctx, store, f.TenantID, *outFlag, stdout, stderr)
	}
	// Both checks run and both are reported, whichever fails.
	chainErr := auditVerify(ctx, store, f, stdout)
	if chainErr != nil && !errors.Is(chainErr, errChainsBroken) {
		return chainErr
	}
	return errors.Join(chainErr, checkAnchors(ctx, store, anchors, loaded, stdout))
}

// readAnchor reads and validates an anchor file.
func readAnchor(path string) (eventstore.Anchor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return eventstore.Anchor{}, fmt.Errorf("--anchor: %w", err)
	}
	var a eventstore.Anchor
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return eventstore.Anchor{}, fmt.Errorf("--anchor %s: not an anchor: %w", path, err)
	}
	if err := a.Validate(); err != nil {
		return eventstore.Anchor{}, fmt.Errorf("--anchor %s: %w", path, err)
	}
	return a, nil
}

// auditAnchor verifies the chains, then writes the heads as an anchor. A
// broken log is not anchored: the anchor would vouch for the break.
func auditAnchor(ctx context.Context, store *eventstore.Store, tenant uuid.UUID, out string, stdout, stderr io.Writer) error {
	rep, err := store.VerifyChains(ctx, eventstore.VerifyFilter{TenantID: tenant})
	if err != nil {
		return err
	}
	if !rep.OK() {
		printVerifyReport(stderr, rep)
		return fmt.Errorf("audit anchor: not anchoring a log with broken chains: %w", errChainsBroken)
	}
	a, err := store.AnchorLog(ctx, tenant)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if out == "-" {
		_, err = stdout.Write(b)
	} else {
		// O_EXCL: an anchor is never overwritten, not even by another anchor.
		var f *os.File
		if f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444); err == nil {
			_, err = f.Write(b)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("audit anchor: %w", err)
	}
	fmt.Fprintf(stderr, "anchored %d streams (%d events) at %s, digest %s\n", a.Streams, a.Events, a.TakenAt.Format(time.RFC3339), a.Digest)
	return nil
}

// checkAnchors compares the log with each anchor and prints what no longer
// matches.
func checkAnchors(ctx context.Context, store *eventstore.Store, paths []string, anchors []eventstore.Anchor, out io.Writer) error {
	mismatched := false
	for i, a := range anchors {
		m, err := store.CheckAnchor(ctx, a)
		if err != nil {
			return err
		}
		if len(m) == 0 {
			fmt.Fprintf(out, "OK: the log matches anchor %s (%d streams, taken %s)\n", paths[i], a.Streams, a.TakenAt.Format(time.RFC3339))
			continue
		}
		mismatched = true
		fmt.Fprintf(out, "BROKEN: %d of %d streams no longer match anchor %s (taken %s)\n", len(m), a.Streams, paths[i], a.TakenAt.Format(time.RFC3339))
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STREAM\tTENANT\tVERSION\tREASON\tANCHORED\tSTORED")
		for _, x := range m {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", x.Head.Stream, x.Head.TenantID, x.Head.Version, x.Reason, x.Head.Hash, hexOrDash(x.Stored))
		}
		tw.Flush()
	}
	if mismatched {
		fmt.Fprintln(out, "rewritten: that event, or one before it, was rewritten after the anchor (with its chain recomputed);")
		fmt.Fprintln(out, "missing: the stream no longer has that version. See docs/AUDIT.md.")
		return errAnchorMismatch
	}
	return nil
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
