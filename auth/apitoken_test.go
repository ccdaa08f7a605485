package auth

import (
	"bytes"
	"errors"
	"regexp"
	"testing"
)

var apiTokenShape = regexp.MustCompile(`^adb_[0-9A-Za-z]{42}$`)

func TestAPITokenRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		tok, hash, prefix := NewAPIToken()
		if !apiTokenShape.MatchString(tok) || len(tok) != APITokenLength {
			t.Fatalf("token %q has the wrong shape", tok)
		}
		if prefix != tok[:12] {
			t.Fatalf("prefix %q of %q", prefix, tok)
		}
		if seen[tok] {
			t.Fatalf("token %q twice", tok)
		}
		seen[tok] = true
		got, err := ParseAPIToken(tok)
		if err != nil || !bytes.Equal(got, hash) {
			t.Fatalf("ParseAPIToken(%q) = %x, %v; want %x", tok, got, err, hash)
		}
		if !LooksLikeAPIToken(tok) {
			t.Fatal("LooksLikeAPIToken false")
		}
	}
}

// TestAPITokenChecksum: any one character changed, a truncation, another
// prefix or a character outside base62 is refused before any look-up.
func TestAPITokenChecksum(t *testing.T) {
	tok, _, _ := NewAPIToken()
	refused := []string{"", "adb_", tok[:len(tok)-1], tok + "0", "xdb_" + tok[4:], "ADB_" + tok[4:],
		tok[:10] + "-" + tok[11:], tok[:10] + "é" + tok[12:]}
	for i := 4; i < len(tok); i++ {
		for _, c := range []byte{'0', 'Z', 'z'} {
			if tok[i] == c {
				continue
			}
			b := []byte(tok)
			b[i] = c
			refused = append(refused, string(b))
		}
	}
	for _, s := range refused {
		if _, err := ParseAPIToken(s); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("ParseAPIToken(%q) = %v, want ErrInvalidToken", s, err)
		}
	}
}

// TestAPITokenChecksumKnownValue pins the checksum: scanners implement it
// from docs/SECURITY.md, so it must not change.
func TestAPITokenChecksumKnownValue(t *testing.T) {
	body := "adb_" + "abcdefghijklmnopqrstuvwxyz0123456789"
	// crc32.ChecksumIEEE of body, in base62 with 6 digits (computed with Python's zlib.crc32).
	const want = "4fWaoI"
	if got := checksum(body); got != want {
		t.Fatalf("checksum = %q, want %q", got, want)
	}
	if _, err := ParseAPIToken(body + want); err != nil {
		t.Fatal(err)
	}
}

func TestRolesWithinAndIntersect(t *testing.T) {
	perms := Intersect([]Permission{PermVMRead, PermUserManage, PermVMRead}, PermissionsOf([]string{RoleOperator}))
	if len(perms) != 1 || perms[0] != PermVMRead {
		t.Fatalf("Intersect = %v", perms)
	}
	if got := RolesWithin([]string{RoleTenantAdmin}, perms); len(got) != 1 || got[0] != RoleViewer {
		t.Fatalf("RolesWithin = %v, want [viewer]", got)
	}
	all := AllPermissions()
	if got := RolesWithin([]string{RoleTenantAdmin}, all); slicesContain(got, RolePlatformAdmin) {
		t.Fatalf("platform_admin given to a non platform admin: %v", got)
	}
	if got := RolesWithin([]string{RolePlatformAdmin}, all); !slicesContain(got, RolePlatformAdmin) {
		t.Fatalf("platform admin's full token lost the role: %v", got)
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
