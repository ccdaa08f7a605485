package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// runEraseUser: `admin erase-user --tenant T --user U --yes`, the operator's
// erasure of a person (docs/PRIVACY.md): their keys destroyed, user_erased
// appended, side tables cleaned; the projectors of a running service clean
// the read models. Named by id, so it also erases a user whose email can no
// longer be read (an erasure interrupted before its event committed is
// simply run again).
func runEraseUser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin erase-user", flag.ContinueOnError)
	cfg := bindConfig(fs)
	tenantArg := fs.String("tenant", "", "the user's tenant id")
	userArg := fs.String("user", "", "the user's id")
	yes := fs.Bool("yes", false, "confirm: the erasure cannot be undone")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	tenant, terr := uuid.Parse(*tenantArg)
	user, uerr := uuid.Parse(*userArg)
	if terr != nil || uerr != nil || !*yes {
		return errors.New("usage: accountdb admin erase-user --tenant <uuid> --user <uuid> --yes")
	}
	h, closeFn, err := openCommands(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	res, err := h.EraseUserByOperator(ctx, systemActor(), tenant, user)
	if errors.Is(err, domain.ErrNotFound) {
		return fmt.Errorf("no user %s in tenant %s (or already erased)", user, tenant)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %s erased (user_erased at position %d)\n", user, res.Position)
	return nil
}
