package pvesim

import (
	"bytes"
	"context"
	"regexp"
	"sync"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- RunCommand(ctx, []string{
			"--listen", "127.0.0.1:0", "--nodes", "2", "--tls", "--time-scale", "0",
			"--token", "ci@pve!sim=topsecret", "--password", "pw123",
			"--fail-tasks", "qmstart=1", "--lock", "9001=migrate", "--exhaust", "pve2",
		}, out)
	}()
	urlRe := regexp.MustCompile(`serving 2 nodes at (https://\S+)`)
	var url string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := urlRe.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			break
		}
	}
	if url == "" {
		t.Fatalf("no URL in output: %q", out.String())
	}
	if regexp.MustCompile(`topsecret|pw123`).MatchString(out.String()) {
		t.Fatalf("secret printed: %q", out.String())
	}

	c := proxmox.NewClient(url, proxmox.WithHTTPClient(insecureHTTP()), proxmox.WithAPIToken("ci@pve!sim", "topsecret"))
	e := &env{client: c, ctx: ctx}
	ns, err := c.Nodes(ctx)
	if err != nil || len(ns) != 2 {
		t.Fatalf("nodes = %v %v", ns, err)
	}
	e.ok(t)(e.node(t, "pve1").NewVirtualMachine(ctx, 100))
	vm := e.vm(t, "pve1", 100)
	e.fails(t, "QEMU exited with code 1")(vm.Start(ctx))
	e.ok(t)(vm.Start(ctx))
	e.fails(t, "VM is locked (migrate)")(e.vm(t, "pve1", 9001).Delete(ctx, nil))
	e.fails(t, "insufficient free space")(e.node(t, "pve2").NewVirtualMachine(ctx, 101))

	pc := proxmox.NewClient(url, proxmox.WithHTTPClient(insecureHTTP()),
		proxmox.WithCredentials(&proxmox.Credentials{Username: "root@pam", Password: "pw123"}))
	if _, err := pc.Version(ctx); err != nil {
		t.Fatalf("ticket login with --password: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunCommand: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunCommand did not return after cancel")
	}
}

func TestRunCommandRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--token", "nonsense"},
		{"--fail-tasks", "qmstart"},
		{"--lock", "abc"},
		{"--exhaust", "pve99"},
		{"--nodes", "x"},
		{"extra"},
	} {
		if err := RunCommand(context.Background(), append([]string{"--listen", "127.0.0.1:0"}, args...), &syncBuffer{}); err == nil {
			t.Fatalf("args %v accepted", args)
		}
	}
}
