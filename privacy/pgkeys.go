package privacy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/accountdb/accountdb/tenantdb"
	"github.com/accountdb/accountdb/vault"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PGKeys keeps subjects' keys in PostgreSQL (subject_keys, migration 00037),
// each sealed with the service's secrets key, and caches them briefly.
type PGKeys struct {
	pool  *pgxpool.Pool
	vault *vault.Vault
	cache *keyCache
	// gen moves whenever this process learns that keys were destroyed
	// (Forget, DestroyMetadataKeys): caches of revealed events compare it.
	gen atomic.Uint64
}

var _ Keys = (*PGKeys)(nil)

// NewPGKeys returns the key store on pool (the service role's), sealing keys
// with v. ttl is how long keys stay cached (0: DefaultCacheTTL).
func NewPGKeys(pool *pgxpool.Pool, v *vault.Vault, ttl time.Duration) *PGKeys {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	return &PGKeys{pool: pool, vault: v, cache: newKeyCache(ttl)}
}

// subjectLockNamespace is the first key of the advisory lock that orders a
// subject's key creation and erasure (eventstore's stream locks are 69, the
// tenant lock 84, the projections' 80–82).
const subjectLockNamespace = 86

const lockSubjectSQL = `SELECT pg_advisory_xact_lock($1, hashtext($2))`

func keyAAD(tenant uuid.UUID, ref KeyRef) string {
	return "subject_key|" + tenant.String() + "|" + ref.Subject.String() + "|" + ref.Name
}

// Key implements Keys.
func (k *PGKeys) Key(ctx context.Context, tenant uuid.UUID, ref KeyRef, create bool) ([]byte, error) {
	if c, ok := k.cache.get(tenant, ref); ok && (c.key != nil || !create) {
		if c.key == nil {
			return nil, ErrNoKey
		}
		return c.key, nil
	}
	sealed, err := k.read(ctx, tenant, ref)
	if errors.Is(err, ErrNoKey) && create {
		sealed, err = k.create(ctx, tenant, ref)
	}
	if errors.Is(err, ErrNoKey) {
		k.cache.put(tenant, ref, nil)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	plain, err := k.vault.Open(sealed, keyAAD(tenant, ref))
	if err != nil {
		return nil, fmt.Errorf("privacy: open key %s of %s: %w", ref.Name, ref.Subject, err)
	}
	key, err := base64.RawStdEncoding.DecodeString(plain)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("privacy: key %s of %s is not 32 bytes", ref.Name, ref.Subject)
	}
	k.cache.put(tenant, ref, key)
	return key, nil
}

func (k *PGKeys) read(ctx context.Context, tenant uuid.UUID, ref KeyRef) (string, error) {
	var sealed string
	err := tenantdb.ReadTx(ctx, k.pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT sealed_key FROM subject_keys WHERE subject_id = $1 AND key_name = $2`,
			ref.Subject, ref.Name).Scan(&sealed)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNoKey
	}
	if err != nil {
		return "", fmt.Errorf("privacy: read key: %w", err)
	}
	return sealed, nil
}

// create makes ref's key unless its subject was erased. Two processes making
// the same key at once both end with the one that was stored first.
func (k *PGKeys) create(ctx context.Context, tenant uuid.UUID, ref KeyRef) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	sealed, err := k.vault.Seal(base64.RawStdEncoding.EncodeToString(raw), keyAAD(tenant, ref))
	if err != nil {
		return "", err
	}
	var period *time.Time
	if p, ok := metadataPeriod(ref.Name); ok {
		period = &p
	}
	var stored string
	err = tenantdb.InTx(ctx, k.pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockSubjectSQL, subjectLockNamespace, ref.Subject.String()); err != nil {
			return err
		}
		var erased bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM erased_subjects WHERE subject_id = $1)`, ref.Subject).Scan(&erased); err != nil {
			return err
		}
		if erased {
			return ErrErased
		}
		err := tx.QueryRow(ctx, `INSERT INTO subject_keys (tenant_id, subject_id, key_name, period, sealed_key)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING sealed_key`,
			tenant, ref.Subject, ref.Name, period, sealed).Scan(&stored)
		if errors.Is(err, pgx.ErrNoRows) { // made by another process meanwhile
			return tx.QueryRow(ctx, `SELECT sealed_key FROM subject_keys WHERE subject_id = $1 AND key_name = $2`,
				ref.Subject, ref.Name).Scan(&stored)
		}
		return err
	})
	if err != nil {
		if errors.Is(err, ErrErased) {
			return "", err
		}
		return "", fmt.Errorf("privacy: create key: %w", err)
	}
	return stored, nil
}

// EraseSubjectTx destroys every key of subject in tenant and records the
// erasure, inside tx (the transaction that appends user_erased, scoped to
// tenant): the erasure and its event commit together or not at all. Call
// Forget after the commit.
func EraseSubjectTx(ctx context.Context, tx Execer, tenant, subject uuid.UUID) error {
	if _, err := tx.Exec(ctx, lockSubjectSQL, subjectLockNamespace, subject.String()); err != nil {
		return fmt.Errorf("privacy: erase: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM subject_keys WHERE tenant_id = $1 AND subject_id = $2`, tenant, subject); err != nil {
		return fmt.Errorf("privacy: erase keys: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO erased_subjects (tenant_id, subject_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, tenant, subject); err != nil {
		return fmt.Errorf("privacy: record erasure: %w", err)
	}
	return nil
}

// Execer runs a statement inside a transaction: a pgx.Tx, or a pooled
// connection inside one its holder began.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Forget drops subject's cached keys in this process (after its erasure).
func (k *PGKeys) Forget(tenant, subject uuid.UUID) {
	k.cache.forgetSubject(tenant, subject)
	k.gen.Add(1)
}

// Generation changes whenever this process learns that keys were destroyed:
// a cache of revealed events made at another generation is stale.
func (k *PGKeys) Generation() uint64 { return k.gen.Load() }

// DestroyMetadataKeys destroys tenant's request-metadata keys of days before
// the UTC day of before (retention), and answers how many it destroyed.
func (k *PGKeys) DestroyMetadataKeys(ctx context.Context, tenant uuid.UUID, before time.Time) (int64, error) {
	var n int64
	err := tenantdb.InTx(ctx, k.pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM subject_keys WHERE tenant_id = $1 AND period IS NOT NULL AND period < $2::date`,
			tenant, before.UTC().Format("2006-01-02"))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("privacy: destroy metadata keys: %w", err)
	}
	if n > 0 {
		k.cache.forgetAll()
		k.gen.Add(1)
	}
	return n, nil
}
