package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/accountdb/accountdb/vault"
)

func TestAgentConfigNeedsNATS(t *testing.T) {
	t.Setenv("NATS_URL", "")
	t.Setenv("ACCOUNTDB_AGENT_CONCURRENCY", "lots")
	t.Setenv("ACCOUNTDB_AGENT_LEASE_TTL", "500ms")
	err := run(context.Background(), []string{"agent", "-data-dir", t.TempDir()}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "NATS_URL") || !strings.Contains(err.Error(), "ACCOUNTDB_AGENT_CONCURRENCY") || !strings.Contains(err.Error(), "ACCOUNTDB_AGENT_LEASE_TTL") {
		t.Fatalf("err = %v", err)
	}
}

// `accountdb agent` end to end: it learns a cluster registered on the bus,
// creates a VM on pvesim, and serves /healthz and /metrics.
func TestAgentSubcommand(t *testing.T) {
	ns := natstest.Start(t)
	sim, err := pvesim.StartServer(pvesim.Options{}, "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ACCOUNTDB_SECRETS_KEY", base64.StdEncoding.EncodeToString(key))
	t.Setenv("NATS_URL", ns.URL())
	creds, err := ns.Keys.Creds(natsauth.Agent())
	if err != nil {
		t.Fatal(err)
	}
	credsFile := filepath.Join(t.TempDir(), "agent.creds")
	if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ACCOUNTDB_NATS_CREDS", credsFile)
	addr := agentTestAddr(t)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"agent", "-http-addr", addr, "-reconcile-interval", "1s"}, io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()

	nc, err := nats.Connect(ns.URL(), ns.CoreOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureStream(ctx, js); err != nil {
		t.Fatal(err)
	}
	results, err := protocol.EnsureStream(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	cluster, tenant, vm := uuid.New(), uuid.New(), uuid.New()
	sealed, err := v.Seal(pvesim.DefaultTokenSecret, domain.ClusterSecretBinding(cluster, sim.URL()))
	if err != nil {
		t.Fatal(err)
	}
	agentTestPublish(t, js, 1, domain.PlatformTenant, eventlog.StreamID{Type: domain.StreamCluster, ID: cluster},
		&domain.ClusterRegistered{Name: "sim", APIURL: sim.URL(), TokenID: pvesim.DefaultTokenID, SealedSecret: sealed, TLSFingerprint: domain.CertificateFingerprint(sim.Certificate())})
	req := agentTestPublish(t, js, 2, tenant, eventlog.StreamID{Type: domain.StreamVM, ID: vm},
		&domain.VMCreateRequested{Name: "cli", Kind: domain.KindQEMU, Spec: domain.VMSpec{Cores: 1, MemoryMB: 1024, DiskGB: 10}, Template: "debian-12", ClusterID: cluster})

	waitCtx, waitCancel := context.WithTimeout(ctx, 30*time.Second)
	defer waitCancel()
	cons, err := results.OrderedConsumer(waitCtx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{protocol.ResultSubject(tenant)}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r, err := protocol.DecodeResult(msg.Data())
	if err != nil || !r.Succeeded || r.RequestEventID != req.EventID || r.Node == "" {
		t.Fatalf("result %+v, %v", r, err)
	}

	if body := agentTestGet(t, "http://"+addr+"/healthz"); body != "ok leader\n" {
		t.Fatalf("/healthz: %q", body)
	}
	if body := agentTestGet(t, "http://"+addr+"/metrics"); !strings.Contains(body, `accountdb_agent_task_seconds_count{action="create",outcome="succeeded"} 1`) || !strings.Contains(body, "accountdb_agent_leader 1") {
		t.Fatalf("/metrics lacks the create:\n%s", body)
	}
}

func agentTestPublish(t *testing.T, js jetstream.JetStream, pos int64, tenant uuid.UUID, stream eventlog.StreamID, de domain.Event) eventlog.Event {
	t.Helper()
	data, err := json.Marshal(de)
	if err != nil {
		t.Fatal(err)
	}
	ev := eventlog.Event{
		Position: eventlog.Position{TransactionID: uint64(pos), GlobalPosition: pos},
		EventID:  uuid.Must(uuid.NewV7()), Stream: stream, StreamVersion: 1, Type: de.EventType(), SchemaVersion: 1,
		TenantID: tenant, CorrelationID: uuid.New(), Data: data, RecordedAt: time.Now().UTC(),
	}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: bus.Subject(ev), Header: nats.Header{}, Data: body}
	m.Header.Set(jetstream.MsgIDHeader, ev.EventID.String())
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return ev
}

// agentTestGet fetches a URL, retrying while the server is not up yet.
func agentTestGet(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(b)
			}
			err = &net.AddrError{Err: resp.Status, Addr: url}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func agentTestAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
