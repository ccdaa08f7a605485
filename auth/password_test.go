package auth

import (
	"errors"
	"strings"
	"testing"
)

// cheap parameters keep most tests fast; the defaults are tested separately.
var cheap = PasswordHasher{Memory: 64, Time: 1, Threads: 1}

func TestHashDefaultsPHCFormat(t *testing.T) {
	h := PasswordHasher{}
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("unexpected PHC prefix: %s", enc)
	}
	parts := strings.Split(enc, "$")
	if len(parts[4]) != 22 || len(parts[5]) != 43 { // 16 and 32 bytes, unpadded base64
		t.Fatalf("salt/hash lengths: %q %q", parts[4], parts[5])
	}
	ok, err := h.Verify("correct horse battery staple", enc)
	if err != nil || !ok {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
	if h.NeedsRehash(enc) {
		t.Fatal("fresh default hash needs rehash")
	}
	if d := DefaultPasswordHasher(); d.Memory < 19456 || d.Time < 2 || d.Threads < 1 {
		t.Fatalf("defaults below OWASP minimum: %+v", d)
	}
}

func TestHashUniqueSalt(t *testing.T) {
	a, _ := cheap.Hash("same password here")
	b, _ := cheap.Hash("same password here")
	if a == b {
		t.Fatal("two hashes of the same password are equal")
	}
}

func TestVerify(t *testing.T) {
	enc, err := cheap.Hash("pässwörd with ünïcode")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(enc, "$")
	flip := func(s string) string { // change the first base64 character
		c := byte('A')
		if s[0] == 'A' {
			c = 'B'
		}
		return string(c) + s[1:]
	}
	join := func(p ...string) string { return strings.Join(p, "$") }
	tests := []struct {
		name      string
		password  string
		encoded   string
		want      bool
		malformed bool
	}{
		{"match", "pässwörd with ünïcode", enc, true, false},
		{"wrong password", "pässwörd with unicode", enc, false, false},
		{"empty password", "", enc, false, false},
		{"tampered hash", "pässwörd with ünïcode", join(parts[0], parts[1], parts[2], parts[3], parts[4], flip(parts[5])), false, false},
		{"tampered salt", "pässwörd with ünïcode", join(parts[0], parts[1], parts[2], parts[3], flip(parts[4]), parts[5]), false, false},
		{"tampered params", "pässwörd with ünïcode", join(parts[0], parts[1], parts[2], "m=64,t=2,p=1", parts[4], parts[5]), false, false},
		{"empty", "x", "", false, true},
		{"argon2i", "x", join("", "argon2i", parts[2], parts[3], parts[4], parts[5]), false, true},
		{"bcrypt", "x", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", false, true},
		{"version 16", "x", join("", "argon2id", "v=16", parts[3], parts[4], parts[5]), false, true},
		{"missing version", "x", join("", "argon2id", parts[3], parts[4], parts[5]), false, true},
		{"extra field", "x", enc + "$x", false, true},
		{"param order", "x", join("", "argon2id", parts[2], "t=1,m=64,p=1", parts[4], parts[5]), false, true},
		{"leading zero", "x", join("", "argon2id", parts[2], "m=064,t=1,p=1", parts[4], parts[5]), false, true},
		{"negative", "x", join("", "argon2id", parts[2], "m=-64,t=1,p=1", parts[4], parts[5]), false, true},
		{"zero time", "x", join("", "argon2id", parts[2], "m=64,t=0,p=1", parts[4], parts[5]), false, true},
		{"zero lanes", "x", join("", "argon2id", parts[2], "m=64,t=1,p=0", parts[4], parts[5]), false, true},
		{"256 lanes", "x", join("", "argon2id", parts[2], "m=65536,t=1,p=256", parts[4], parts[5]), false, true},
		{"huge memory", "x", join("", "argon2id", parts[2], "m=4294967295,t=1,p=1", parts[4], parts[5]), false, true},
		{"huge time", "x", join("", "argon2id", parts[2], "m=64,t=1000000,p=1", parts[4], parts[5]), false, true},
		{"bad salt b64", "x", join("", "argon2id", parts[2], parts[3], "!!!!not-base64!!!!", parts[5]), false, true},
		{"padded salt", "x", join("", "argon2id", parts[2], parts[3], parts[4]+"==", parts[5]), false, true},
		{"short salt", "x", join("", "argon2id", parts[2], parts[3], "AAAA", parts[5]), false, true},
		{"short hash", "x", join("", "argon2id", parts[2], parts[3], parts[4], "AAAA"), false, true},
		{"missing hash", "x", join("", "argon2id", parts[2], parts[3], parts[4]), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := cheap.Verify(tt.password, tt.encoded)
			if ok != tt.want {
				t.Errorf("ok = %v, want %v", ok, tt.want)
			}
			if tt.malformed != errors.Is(err, ErrMalformedHash) {
				t.Errorf("err = %v, malformed = %v", err, tt.malformed)
			}
			if !tt.malformed && err != nil {
				t.Errorf("unexpected error %v", err)
			}
		})
	}
}

func TestVerifyReadsParamsFromHash(t *testing.T) {
	old := PasswordHasher{Memory: 128, Time: 3, Threads: 2, SaltLen: 8, KeyLen: 16}
	enc, err := old.Hash("an older password")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=128,t=3,p=2$") {
		t.Fatalf("params not encoded: %s", enc)
	}
	p, salt, key, err := decodePHC(enc)
	if err != nil || p != (argonParams{memory: 128, time: 3, threads: 2}) || len(salt) != 8 || len(key) != 16 {
		t.Fatalf("decodePHC = %+v, %d, %d, %v", p, len(salt), len(key), err)
	}
	// A hasher with different (stronger) settings still verifies it.
	ok, err := DefaultPasswordHasher().Verify("an older password", enc)
	if err != nil || !ok {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
}

func TestNeedsRehash(t *testing.T) {
	enc, _ := cheap.Hash("some password 123")
	tests := []struct {
		name    string
		h       PasswordHasher
		encoded string
		want    bool
	}{
		{"same params", cheap, enc, false},
		{"more memory", PasswordHasher{Memory: 128, Time: 1, Threads: 1}, enc, true},
		{"more time", PasswordHasher{Memory: 64, Time: 2, Threads: 1}, enc, true},
		{"more lanes", PasswordHasher{Memory: 64, Time: 1, Threads: 2}, enc, true},
		{"longer salt", PasswordHasher{Memory: 64, Time: 1, Threads: 1, SaltLen: 32}, enc, true},
		{"longer key", PasswordHasher{Memory: 64, Time: 1, Threads: 1, KeyLen: 64}, enc, true},
		{"defaults", PasswordHasher{}, enc, true},
		{"garbage", cheap, "$argon2id$garbage", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.h.NeedsRehash(tt.encoded); got != tt.want {
				t.Errorf("NeedsRehash = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHashRejectsBadParams(t *testing.T) {
	for _, h := range []PasswordHasher{
		{Memory: 4, Time: 1, Threads: 1},
		{Memory: 1 << 21, Time: 1, Threads: 1},
		{Memory: 64, Time: 100, Threads: 1},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 4},
		{Memory: 64, Time: 1, Threads: 1, KeyLen: 8},
	} {
		if _, err := h.Hash("whatever password"); err == nil {
			t.Errorf("Hash with %+v succeeded", h)
		}
	}
}

// TestVerifyDummyRuns checks that VerifyDummy does its work without panicking,
// whatever the hasher's settings and the password. Its cost relative to Verify
// is measured by BenchmarkVerifyDummy and BenchmarkVerify, never asserted.
func TestVerifyDummyRuns(t *testing.T) {
	for _, h := range []PasswordHasher{
		cheap,
		{},
		// Invalid settings fall back to the defaults rather than skipping the work.
		{Memory: 1},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 4},
		{Memory: 64, Time: 1, Threads: 1, KeyLen: 8},
	} {
		for _, pw := range []string{"", "a wrong password", strings.Repeat("x", MaxPasswordBytes+1)} {
			h.VerifyDummy(pw)
		}
	}
}

// BenchmarkVerify and BenchmarkVerifyDummy compare a failed sign-in against
// a real hash with one for an unknown user (default parameters); the two
// should cost about the same so that timing does not reveal which accounts
// exist. Compare them with: go test -run '^$' -bench 'Verify' ./auth/
func BenchmarkVerify(b *testing.B) {
	h := DefaultPasswordHasher()
	enc, err := h.Hash("the real password")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := h.Verify("a wrong password", enc); ok || err != nil {
			b.Fatalf("Verify = %v, %v", ok, err)
		}
	}
}

func BenchmarkVerifyDummy(b *testing.B) {
	h := DefaultPasswordHasher()
	for b.Loop() {
		h.VerifyDummy("a wrong password")
	}
}

func TestValidatePassword(t *testing.T) {
	tests := []struct {
		name string
		p    string
		want error
	}{
		{"ok", "correct horse battery", nil},
		{"exactly 12", "abcdefghijkl", nil},
		{"11", "abcdefghijk", ErrPasswordTooShort},
		{"empty", "", ErrPasswordTooShort},
		{"12 multibyte chars", strings.Repeat("é", 12), nil},
		{"6 multibyte chars (12 bytes)", strings.Repeat("é", 6), ErrPasswordTooShort},
		{"256 chars", strings.Repeat("a", 256), nil},
		{"257 chars", strings.Repeat("a", 257), ErrPasswordTooLong},
		{"256 4-byte chars = 1024 bytes", strings.Repeat("😀", 256), nil},
		{"over 1024 bytes", strings.Repeat("😀", 200) + strings.Repeat("a", 225), ErrPasswordTooLong},
		{"1 MB", strings.Repeat("a", 1<<20), ErrPasswordTooLong},
		{"invalid utf-8", "abcdefghijkl\xff", ErrPasswordInvalidUTF},
		{"all spaces", strings.Repeat(" ", 20), ErrPasswordBlank},
		{"all unicode whitespace", strings.Repeat("\u00a0\t\n\u3000", 5), ErrPasswordBlank},
		{"spaces inside", "  a          ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePassword(tt.p)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("ValidatePassword = %v, want %v", err, tt.want)
			}
			if err != nil && len(tt.p) > 3 && strings.Contains(err.Error(), tt.p) {
				t.Fatalf("error echoes the password: %v", err)
			}
		})
	}
}
