package pvesim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	proxmox "github.com/luthermonson/go-proxmox"
)

func TestTicketAuth(t *testing.T) {
	e := newEnv(t, Options{}, true)
	c := proxmox.NewClient(e.srv.URL(), proxmox.WithHTTPClient(insecureHTTP()),
		proxmox.WithCredentials(&proxmox.Credentials{Username: "root@pam", Password: DefaultPassword}))
	v, err := c.Version(e.ctx)
	if err != nil || v.Version != DefaultVersion {
		t.Fatalf("version with ticket: %+v %v", v, err)
	}
	sess := c.Session()
	if sess == nil || !strings.HasPrefix(sess.Ticket, "PVE:root@pam:") || sess.CSRFPreventionToken == "" {
		t.Fatalf("session = %+v", sess)
	}
	// Writes go through with the CSRF header go-proxmox sends.
	n, err := c.Node(e.ctx, "pve1")
	if err != nil {
		t.Fatal(err)
	}
	task, err := n.NewVirtualMachine(e.ctx, 100, proxmox.VirtualMachineOption{Name: "name", Value: "ticketed"})
	e.ok(t)(task, err)
	if task.User != "root@pam" {
		t.Fatalf("task user = %q", task.User)
	}
	// The ticket renews with itself as the password.
	if err := c.RefreshTicket(e.ctx); err != nil {
		t.Fatal(err)
	}

	// Realm given separately is accepted too.
	c2 := proxmox.NewClient(e.srv.URL(), proxmox.WithHTTPClient(insecureHTTP()),
		proxmox.WithCredentials(&proxmox.Credentials{Username: "root", Realm: "pam", Password: DefaultPassword}))
	if _, err := c2.Nodes(e.ctx); err != nil {
		t.Fatal(err)
	}

	bad := proxmox.NewClient(e.srv.URL(), proxmox.WithHTTPClient(insecureHTTP()),
		proxmox.WithCredentials(&proxmox.Credentials{Username: "root@pam", Password: "wrong"}))
	if _, err := bad.Version(e.ctx); !errors.Is(err, proxmox.ErrNotAuthorized) {
		t.Fatalf("bad password: %v", err)
	}
}

func TestTokenAuth(t *testing.T) {
	e := newEnv(t, Options{Token: "ops@pve!ci=s3cret"}, false)
	if _, err := e.client.Nodes(e.ctx); err != nil {
		t.Fatalf("custom token: %v", err)
	}
	for _, tc := range []struct{ id, secret string }{
		{"ops@pve!ci", "wrong"},
		{"root@pam!accountdb", "s3cret"},
		{DefaultTokenID, DefaultTokenSecret},
	} {
		c := proxmox.NewClient(e.srv.URL(), proxmox.WithAPIToken(tc.id, tc.secret))
		if _, err := c.Nodes(e.ctx); !errors.Is(err, proxmox.ErrNotAuthorized) {
			t.Fatalf("token %s accepted: %v", tc.id, err)
		}
	}
	anon := proxmox.NewClient(e.srv.URL())
	if _, err := anon.Version(e.ctx); !errors.Is(err, proxmox.ErrNotAuthorized) {
		t.Fatalf("anonymous accepted: %v", err)
	}
}

// TestCSRFAndFormBodies talks raw HTTP like pvesh/curl would: form-encoded
// bodies work, and cookie-authenticated writes without CSRF are refused.
func TestCSRFAndFormBodies(t *testing.T) {
	e := newEnv(t, Options{}, false)
	res, err := http.PostForm(e.srv.URL()+"/access/ticket", url.Values{"username": {"root@pam"}, "password": {DefaultPassword}})
	if err != nil {
		t.Fatal(err)
	}
	var login struct {
		Data proxmox.Session `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&login); err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()

	post := func(csrf string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL()+"/nodes/pve1/qemu", strings.NewReader("vmid=4242&name=form-vm&memory=256"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", "PVEAuthCookie="+url.QueryEscape(login.Data.Ticket))
		if csrf != "" {
			req.Header.Set("CSRFPreventionToken", csrf)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res = post("")
	_ = res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("write without CSRF: %s", res.Status)
	}
	res = post(login.Data.CSRFPreventionToken)
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"data":"UPID:pve1:`) {
		t.Fatalf("form create: %s %s", res.Status, body)
	}
	g, ok := e.sim.Guest(4242)
	if !ok || g.Name != "form-vm" || g.Config["memory"] != "256" {
		t.Fatalf("guest = %+v", g)
	}
	// Unknown endpoints answer 501 like pveproxy.
	res, err = http.Get(e.srv.URL() + "/nodes/pve1/ceph/status")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusNotImplemented {
		t.Fatalf("unknown endpoint: %s", res.Status)
	}
}
