package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accountdb/accountdb/api/pglimits"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/projections"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// rywRounds renames the tenant on writeURL and reads it back on readURL
// with the write's X-Consistency-Token, rounds times; a read that does not
// see its write is an error (the wait must hold, not time out).
func rywRounds(ctx context.Context, client *http.Client, label, writeURL, readURL, token string, tenant uuid.UUID, rounds int) (rywCase, error) {
	c := rywCase{Label: label}
	var whole, reads []time.Duration
	for i := range rounds {
		if ctx.Err() != nil {
			return c, ctx.Err()
		}
		name := fmt.Sprintf("ryw-%s-%d", uuid.NewString()[:6], i)
		began := time.Now()
		resp, err := benchDo(ctx, client, http.MethodPatch, writeURL+"/v1/tenants/"+tenant.String(), token, map[string]any{"name": name}, "")
		if err != nil {
			return c, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return c, fmt.Errorf("PATCH tenant: %d", resp.StatusCode)
		}
		readBegan := time.Now()
		resp, err = benchDo(ctx, client, http.MethodGet, readURL+"/v1/tenants/"+tenant.String(), token, nil, resp.Header.Get("X-Consistency-Token"))
		if err != nil {
			return c, err
		}
		var got struct {
			Name string `json:"name"`
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || got.Name != name || resp.Header.Get("X-Consistency") == "stale" {
			return c, fmt.Errorf("GET after PATCH (%s): %d, name %q want %q, consistency %q, %v", label, resp.StatusCode, got.Name, name, resp.Header.Get("X-Consistency"), err)
		}
		reads = append(reads, time.Since(readBegan))
		whole = append(whole, time.Since(began))
	}
	c.P50, c.P99, c.Max = percentiles(whole)
	c.ReadP50, c.RP99, _ = percentiles(reads)
	return c, nil
}

func benchDo(ctx context.Context, client *http.Client, method, url, token string, body any, consistency string) (*http.Response, error) {
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if consistency != "" {
		req.Header.Set("X-Consistency-Token", consistency)
	}
	return client.Do(req)
}

// appendBacklog appends n events in appends of 100, each its own stream.
func appendBacklog(ctx context.Context, core *benchCore, n int) error {
	tenant := uuid.New()
	for done := 0; done < n; {
		batch := min(100, n-done)
		evs := make([]eventstore.NewEvent, batch)
		for i := range evs {
			evs[i] = eventstore.NewEvent{Type: "bench_backlog_recorded"}
		}
		st, err := eventlog.NewStreamID("bench", uuid.New())
		if err != nil {
			return err
		}
		if _, err := core.db.store.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(), Events: evs}); err != nil {
			return fmt.Errorf("backlog: %w", err)
		}
		done += batch
	}
	return nil
}

// waitUntil polls cond every 20 ms until it holds, fails or d passes.
func waitUntil(ctx context.Context, d time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s", what, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ownerPool is the owner role on the bench database, as
// `accountdb projections rebuild` connects (a rebuild replaces tables).
func (db *benchDB) ownerPool(ctx context.Context) (*pgxpool.Pool, error) {
	return projections.OpenOwnerPool(ctx, db.adminURL)
}

// countHits counts requests on keys distinct keys from clients goroutines
// for d and returns the mean time of one.
func countHits(ctx context.Context, s *pglimits.Store, keys, clients int, d time.Duration) (limitCase, error) {
	label := fmt.Sprintf("%d keys", keys)
	if keys == 1 {
		label = "one key (one tenant)"
	}
	names := make([]string, keys)
	for i := range names {
		names[i] = "bench:" + uuid.NewString()
	}
	var hits atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, clients)
	began := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; time.Since(began) < d; i += clients {
				if _, err := s.Hit(ctx, names[i%keys], time.Minute); err != nil {
					errs[c] = err
					return
				}
				hits.Add(1)
			}
		}()
	}
	wg.Wait()
	if i := slices.IndexFunc(errs, func(e error) bool { return e != nil }); i >= 0 {
		return limitCase{}, fmt.Errorf("shared limit: %w", errs[i])
	}
	elapsed := time.Since(began)
	n := hits.Load()
	return limitCase{Label: label, Clients: clients, Hits: int(n), PerHit: time.Duration(int64(elapsed) * int64(clients) / max(n, 1)),
		Rate: float64(n) / elapsed.Seconds()}, nil
}
