package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/projections"
)

// runProjections: `projections status` and `projections rebuild <name>`.
func runProjections(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("projections", flag.ContinueOnError)
	cfg := bindConfig(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return errors.New("usage: accountdb projections status | rebuild <name>")
	}
	pool, err := cfg.openAppPool(ctx, 4, "accountdb-projections")
	if err != nil {
		return err
	}
	defer pool.Close()

	switch rest[0] {
	case "status":
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROJECTOR\tCHECKPOINT\tHEAD\tBEHIND\tLAG\tUPDATED")
		for _, p := range app.Projectors() {
			st, err := projections.ReadStatus(ctx, pool, p.Name())
			if err != nil {
				return err
			}
			updated := "never"
			if !st.UpdatedAt.IsZero() {
				updated = st.UpdatedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", p.Name(), st.Checkpoint.GlobalPosition,
				st.Head.GlobalPosition, st.Behind, st.Lag.Round(time.Millisecond), updated)
		}
		return tw.Flush()
	case "rebuild":
		if len(rest) != 2 {
			return errors.New("usage: accountdb projections rebuild <name>")
		}
		p, ok := findProjector(rest[1])
		if !ok {
			return fmt.Errorf("unknown projector %q (known: %s)", rest[1], projectorNames())
		}
		owner, err := projections.OpenOwnerPool(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer owner.Close()
		priv, err := openPrivacy(ctx, cfg, stderr)
		if err != nil {
			return err
		}
		defer priv.Close()
		res, err := projections.Rebuild(ctx, owner, priv.Store(app.NewStore(eventstore.New(pool, nil))), p, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rebuilt %s: %+v\n", p.Name(), res)
		return nil
	}
	return fmt.Errorf("unknown projections command %q", rest[0])
}

func findProjector(name string) (projections.Projector, bool) {
	for _, p := range app.Projectors() {
		if p.Name() == name {
			return p, true
		}
	}
	return nil, false
}

func projectorNames() string {
	var names []string
	for _, p := range app.Projectors() {
		names = append(names, p.Name())
	}
	return strings.Join(names, ", ")
}
