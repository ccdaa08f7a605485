package webhooks

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestGuardRefusesInternalAddresses(t *testing.T) {
	var g Guard
	for _, a := range []string{"127.0.0.1", "127.9.9.9", "::1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "fd00:ec2::254", "fe80::1", "100.100.100.200", "0.0.0.0", "::", "224.0.0.1", "::ffff:127.0.0.1",
		"::ffff:169.254.169.254", "fc00::1", "255.255.255.255", "198.18.0.1"} {
		if err := g.Check(netip.MustParseAddr(a)); !errors.Is(err, ErrForbiddenDestination) {
			t.Errorf("%s: %v, want refused", a, err)
		}
	}
	for _, a := range []string{"93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "172.32.0.1", "192.169.0.1"} {
		if err := g.Check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s: %v, want allowed", a, err)
		}
	}
	allowed := Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}}
	if err := allowed.Check(netip.MustParseAddr("10.20.3.4")); err != nil {
		t.Errorf("an operator-allowed address: %v", err)
	}
	if err := allowed.Check(netip.MustParseAddr("10.21.3.4")); err == nil {
		t.Error("an address outside the allowed range passed")
	}
}

// TestClientChecksTheDialledAddress: the name "localhost" is not on any
// list; what it resolves to is refused when the connection is made.
func TestClientChecksTheDialledAddress(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer srv.Close()
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	_, err := newClient(Guard{}, 2*time.Second).Post(url, "application/json", nil)
	if !errors.Is(err, ErrForbiddenDestination) {
		t.Fatalf("posting to %s: %v, want ErrForbiddenDestination", url, err)
	}
	if hits.Load() != 0 {
		t.Fatal("the refused address was reached")
	}
	if msg := errorText(outcome{err: err}); strings.Contains(msg, "localhost") || !strings.Contains(msg, "not allowed") {
		t.Errorf("error text %q: want the refusal without the URL", msg)
	}
	// Allowed by the operator, it is reached.
	loop := Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	resp, err := newClient(loop, 2*time.Second).Post(url, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("hits %d", hits.Load())
	}
}

// TestClientFollowsNoRedirect: a 3xx is the answer; its target is never
// requested (a redirect to an internal address would bypass the guard's
// intent, and a webhook's answer is the endpoint's).
func TestClientFollowsNoRedirect(t *testing.T) {
	var targetHits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { targetHits.Add(1) }))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	loop := Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	resp, err := newClient(loop, 2*time.Second).Post(redirect.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || targetHits.Load() != 0 {
		t.Fatalf("status %d, target hit %d times", resp.StatusCode, targetHits.Load())
	}
	if (outcome{code: resp.StatusCode}).ok() {
		t.Fatal("a redirect counted as delivered")
	}
}

func TestBackoffGrowsWithJitterUpToMax(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 10 * time.Second}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 40: 10 * time.Second} {
		for range 50 {
			if d := b.Delay(attempt); d > want || d < want*4/5 {
				t.Fatalf("attempt %d: %s, want within [%s, %s]", attempt, d, want*4/5, want)
			}
		}
	}
	// The default schedule reaches its give-up window in about twenty attempts.
	var total time.Duration
	n := 0
	for total < DefaultBackoff.GiveUpAfter {
		n++
		total += min(DefaultBackoff.Max, DefaultBackoff.Base<<min(n-1, 30))
	}
	if n < 15 || n > 30 {
		t.Fatalf("the default schedule gives up after %d attempts", n)
	}
}

func TestSignatureKnownAnswer(t *testing.T) {
	// The Standard Webhooks specification's example.
	key, err := DecodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign([][]byte{key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("signature %s", got)
	}
}
