package auth

import (
	"bytes"
	"testing"
)

// FuzzParseAPIToken: the API token parser sees every bearer credential that
// starts with adb_. What it accepts has the documented shape and checksum
// and hashes to HashAPIToken of itself; a token it accepts stops being
// accepted when any one character after the prefix changes.
func FuzzParseAPIToken(f *testing.F) {
	tok, _, _ := NewAPIToken()
	for _, s := range []string{tok, tok[:len(tok)-1], "adb_", "", "adb_" + "abcdefghijklmnopqrstuvwxyz0123456789" + "4fWaoI", tok + "\x00", "adb_é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hash, err := ParseAPIToken(s)
		if err != nil {
			return
		}
		if !apiTokenShape.MatchString(s) || len(s) != APITokenLength {
			t.Fatalf("accepted %q, which is not adb_ and 42 base62 characters", s)
		}
		if checksum(s[:len(s)-apiTokenCheck]) != s[len(s)-apiTokenCheck:] {
			t.Fatalf("accepted %q with a wrong checksum", s)
		}
		if !bytes.Equal(hash, HashAPIToken(s)) {
			t.Fatalf("hash of %q is not its SHA-256", s)
		}
		b := []byte(s)
		for i := len(APITokenPrefix); i < len(b); i++ {
			orig := b[i]
			b[i] = base62[(indexBase62(orig)+1)%62]
			if _, err := ParseAPIToken(string(b)); err == nil {
				t.Fatalf("accepted %q, one character away from %q", b, s)
			}
			b[i] = orig
		}
	})
}

func indexBase62(c byte) int {
	return bytes.IndexByte([]byte(base62), c)
}
