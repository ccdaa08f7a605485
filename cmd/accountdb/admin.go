package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/app"
)

const adminUsage = `usage: accountdb admin create-platform-admin --email <email> --password-stdin
       accountdb admin erase-user --tenant <uuid> --user <uuid> --yes
       accountdb admin privacy-report [--tenant <uuid>]`

// runAdmin: `admin create-platform-admin`, `admin erase-user`, `admin privacy-report`.
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(adminUsage)
	}
	switch args[0] {
	case "create-platform-admin":
		return runCreatePlatformAdmin(ctx, args, stdout, stderr)
	case "erase-user":
		return runEraseUser(ctx, args, stdout, stderr)
	case "privacy-report":
		return runPrivacyReport(ctx, args, stdout, stderr)
	}
	return errors.New(adminUsage)
}

// runCreatePlatformAdmin: `admin create-platform-admin --email E --password-stdin`.
func runCreatePlatformAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin create-platform-admin", flag.ContinueOnError)
	cfg := bindConfig(fs)
	email := fs.String("email", "", "the administrator's email address")
	name := fs.String("display-name", "Platform administrator", "display name")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input (required: never a flag)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *email == "" || !*fromStdin {
		return errors.New("--email and --password-stdin are required")
	}
	password, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	password = strings.TrimRight(password, "\r\n")

	h, closeFn, err := openCommands(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	res, err := h.CreateUser(ctx, systemActor(), commands.Options{}, commands.NewUser{
		TenantID: domain.PlatformTenant, Email: *email, DisplayName: *name, Password: password,
		Roles: []string{auth.RolePlatformAdmin}})
	if err != nil {
		var ve *domain.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("%s", ve.Error())
		}
		return err
	}
	fmt.Fprintf(stdout, "platform administrator %s created (id %s)\n", domain.NormalizeEmail(*email), res.ID)
	return nil
}

// systemActor is the actor of set-up commands run by an operator on the
// host: it may grant any role, and its events have no user as actor.
func systemActor() commands.Actor {
	return commands.Actor{TenantID: domain.PlatformTenant, Roles: []string{auth.RolePlatformAdmin},
		Metadata: eventlog.Metadata{UserAgent: "accountdb-cli"}}
}

// openCommands connects a command handler for one-shot CLI work; it seals
// personal data like serve when the secrets key is there (openPrivacy).
func openCommands(ctx context.Context, cfg *config, stderr io.Writer) (*commands.Handler, func(), error) {
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	pool, err := cfg.openAppPool(ctx, 4, "accountdb-admin")
	if err != nil {
		return nil, nil, err
	}
	ident, err := loadIdentity(cfg)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	priv, err := openPrivacy(ctx, cfg, stderr)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	store := priv.Store(app.NewStore(eventstore.New(pool, nil)))
	closeAll := func() { priv.Close(); pool.Close() }
	return priv.Commands(app.NewCommandHandler(store, ident.Keys)), closeAll, nil
}

// demoAccount is one account that `dev` creates on first start.
type demoAccount struct {
	email, name string
	roles       []string
	platform    bool
}

var demoAccounts = []demoAccount{
	{"admin@platform.example", "Platform Admin", []string{auth.RolePlatformAdmin}, true},
	{"admin@demo.example", "Demo Admin", []string{auth.RoleTenantAdmin}, false},
	{"operator@demo.example", "Demo Operator", []string{auth.RoleOperator}, false},
}

// seedDemo creates a demo tenant and its accounts the first time `dev` runs,
// printing their passwords once and keeping a copy, readable only by the
// owner, in the data directory.
func seedDemo(ctx context.Context, h *commands.Handler, dataDir string, out io.Writer) error {
	a := systemActor()
	tenant, err := h.CreateTenant(ctx, a, commands.Options{IdempotencyKey: "dev-demo-tenant"}, "Demo",
		domain.Quota{MaxVMs: 20, MaxCores: 64, MaxMemoryMB: 131072, MaxDiskGB: 2000})
	if err != nil {
		return fmt.Errorf("demo tenant: %w", err)
	}
	credFile := filepath.Join(dataDir, "demo-credentials.txt")
	var created []string
	for _, acct := range demoAccounts {
		password := rand.Text()
		tid := tenant.ID
		if acct.platform {
			tid = domain.PlatformTenant
		}
		_, err := h.CreateUser(ctx, a, commands.Options{}, commands.NewUser{TenantID: tid, Email: acct.email,
			DisplayName: acct.name, Password: password, Roles: acct.roles})
		if errors.Is(err, domain.ErrConflict) {
			continue // created on an earlier start
		}
		if err != nil {
			return fmt.Errorf("demo account %s: %w", acct.email, err)
		}
		created = append(created, fmt.Sprintf("  %-24s %-26s %s", acct.email, password, strings.Join(acct.roles, ",")))
	}
	if len(created) == 0 {
		fmt.Fprintf(out, "Demo accounts exist already; their passwords were printed when they were created (copy in %s).\n", credFile)
		return nil
	}
	text := "Demo accounts (shown once; a copy is in " + credFile + "):\n  EMAIL                    PASSWORD                   ROLES\n" +
		strings.Join(created, "\n") + "\n"
	if err := os.WriteFile(credFile, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", credFile, err)
	}
	fmt.Fprint(out, text)
	return nil
}
