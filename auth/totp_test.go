package auth

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base32"
	"hash"
	"net/url"
	"testing"
	"time"
)

// TestTOTPRFC6238Vectors: the test vectors of RFC 6238, appendix B (8
// digits; SHA-1 with the 20-byte seed "12345678901234567890", and for
// completeness of hotp the SHA-256 and SHA-512 seeds).
func TestTOTPRFC6238Vectors(t *testing.T) {
	seeds := map[string]struct {
		h   func() hash.Hash
		key string
	}{
		"SHA1":   {sha1.New, "12345678901234567890"},
		"SHA256": {sha256.New, "12345678901234567890123456789012"},
		"SHA512": {sha512.New, "1234567890123456789012345678901234567890123456789012345678901234"},
	}
	vectors := []struct {
		unix int64
		alg  string
		code string
	}{
		{59, "SHA1", "94287082"}, {59, "SHA256", "46119246"}, {59, "SHA512", "90693936"},
		{1111111109, "SHA1", "07081804"}, {1111111109, "SHA256", "68084774"}, {1111111109, "SHA512", "25091201"},
		{1111111111, "SHA1", "14050471"}, {1111111111, "SHA256", "67062674"}, {1111111111, "SHA512", "99943326"},
		{1234567890, "SHA1", "89005924"}, {1234567890, "SHA256", "91819424"}, {1234567890, "SHA512", "93441116"},
		{2000000000, "SHA1", "69279037"}, {2000000000, "SHA256", "90698825"}, {2000000000, "SHA512", "38618901"},
		{20000000000, "SHA1", "65353130"}, {20000000000, "SHA256", "77737706"}, {20000000000, "SHA512", "47863826"},
	}
	for _, v := range vectors {
		s := seeds[v.alg]
		if got := hotp(s.h, []byte(s.key), TOTPStep(time.Unix(v.unix, 0)), 8); got != v.code {
			t.Errorf("T=%d %s: %s, want %s", v.unix, v.alg, got, v.code)
		}
	}
	// The 6-digit SHA-1 code AccountDB uses is the last six digits.
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))
	if got, _ := TOTPCode(secret, TOTPStep(time.Unix(59, 0))); got != "287082" {
		t.Fatalf("6-digit code at T=59: %s", got)
	}
}

func TestVerifyTOTPWindowAndReplay(t *testing.T) {
	secret := NewTOTPSecret()
	now := time.Unix(1_900_000_000, 0)
	step := TOTPStep(now)
	code := func(s int64) string {
		c, err := TOTPCode(secret, s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, d := range []int64{-1, 0, 1} {
		if got, ok := VerifyTOTP(secret, code(step+d), now, 0); !ok || got != step+d {
			t.Errorf("step %+d refused (%d, %v)", d, got, ok)
		}
	}
	for _, d := range []int64{-3, -2, 2, 3} {
		if _, ok := VerifyTOTP(secret, code(step+d), now, 0); ok {
			t.Errorf("step %+d accepted", d)
		}
	}
	// Once step was accepted, its code and older ones are refused.
	if _, ok := VerifyTOTP(secret, code(step), now, step); ok {
		t.Error("a replayed code was accepted")
	}
	if _, ok := VerifyTOTP(secret, code(step-1), now, step); ok {
		t.Error("an older code was accepted after a newer one")
	}
	if _, ok := VerifyTOTP(secret, code(step+1), now, step); !ok {
		t.Error("the next step's code was refused")
	}
	for _, bad := range []string{"", "12345", "1234567", "12345a", " 123456"} {
		if _, ok := VerifyTOTP(secret, bad, now, 0); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestTOTPURIAndRecoveryCodes(t *testing.T) {
	u, err := url.Parse(TOTPURI("AccountDB", "alice@example.com", "JBSWY3DPEHPK3PXP"))
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/AccountDB:alice@example.com" {
		t.Fatalf("uri %v %v", u, err)
	}
	q := u.Query()
	if q.Get("secret") != "JBSWY3DPEHPK3PXP" || q.Get("issuer") != "AccountDB" || q.Get("digits") != "6" || q.Get("period") != "30" || q.Get("algorithm") != "SHA1" {
		t.Fatalf("query %v", q)
	}
	codes := NewRecoveryCodes()
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != 19 || c[4] != '-' || seen[c] {
			t.Fatalf("code %q", c)
		}
		seen[c] = true
	}
	if len(codes) != 10 || string(HashRecoveryCode(codes[0])) != string(HashRecoveryCode(" "+upper(codes[0])[:4]+upper(codes[0])[5:])) {
		t.Fatal("recovery code normal form")
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}
