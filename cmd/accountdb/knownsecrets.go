package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/accountdb/accountdb/vault"
)

// publishedMarker is in every placeholder secret this repository has ever
// shipped (docker-compose.yml's old defaults): a value containing it is
// known to anyone who read the repository.
const publishedMarker = "dev-insecure"

// publishedSecretsKeys are secrets keys published in the repository. The
// first is docker-compose.yml's former default, base64 of
// "dev-insecure-secrets-key-32bytes"; the others the test suites' fixed keys.
var publishedSecretsKeys = [][]byte{
	[]byte("dev-insecure-secrets-key-32bytes"),
	bytes.Repeat([]byte{9}, 32),
	make([]byte, 32),
}

// publishedPasswords are database passwords published in the repository.
var publishedPasswords = []string{"dev-insecure-postgres-password", "dev-insecure-app-password", "postgres", "accountdb", "password"}

// errPublishedSecret explains a refusal.
func errPublishedSecret(what string) error {
	return fmt.Errorf("%s is a value published in AccountDB's repository (a development default): anyone can read it. "+
		"Generate your own (see docs/SECURITY.md); only `accountdb dev` accepts it", what)
}

// checkSecretsKey refuses a secrets key known from the repository.
func checkSecretsKey(raw string) error {
	if raw == "" {
		return nil
	}
	key, err := vault.ParseKey(raw)
	if err != nil {
		return nil // reported by the key's own parsing
	}
	for _, k := range publishedSecretsKeys {
		if bytes.Equal(key, k) {
			return errPublishedSecret("ACCOUNTDB_SECRETS_KEY")
		}
	}
	if bytes.Contains(key, []byte(publishedMarker)) {
		return errPublishedSecret("ACCOUNTDB_SECRETS_KEY")
	}
	return nil
}

func knownPassword(pw string) bool {
	for _, p := range publishedPasswords {
		if pw == p {
			return true
		}
	}
	return strings.Contains(pw, publishedMarker)
}

// checkProductionSecrets refuses, for serve, any secret of cfg known from
// the repository: the secrets key and the database passwords (given alone
// or inside a URL).
func checkProductionSecrets(cfg *config, secretsKey string) error {
	var errs []error
	if err := checkSecretsKey(secretsKey); err != nil {
		errs = append(errs, err)
	}
	if knownPassword(cfg.AppDBPassword) {
		errs = append(errs, errPublishedSecret("ACCOUNTDB_APP_DB_PASSWORD"))
	}
	for name, raw := range map[string]string{"DATABASE_URL": cfg.DatabaseURL, "ACCOUNTDB_APP_DATABASE_URL": cfg.AppDatabaseURL} {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && knownPassword(pw) {
				errs = append(errs, errPublishedSecret("the password in "+name))
			}
		}
	}
	return errors.Join(errs...)
}
