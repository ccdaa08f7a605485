package shacrypt

import (
	"strings"
	"testing"
)

// Vectors from the specification's test section (the first three of each
// family), cross-checked with `openssl passwd -5/-6 -salt …`, plus a
// password longer than two digest blocks.
var vectors = []struct{ setting, password, want string }{
	{"$5$saltstring", "Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
	{"$5$rounds=10000$saltstringsaltstring", "Hello world!", "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"},
	{"$5$rounds=5000$toolongsaltstring", "Hello world!", "$5$rounds=5000$toolongsaltstrin$0vuwUia3Nx9V/DqToMS8YLcfXpEXmSaC8wgguLIbus2"},
	{"$5$rounds=10$roundstoolow", "Hello world!", "$5$rounds=1000$roundstoolow$BiO0thfsibXRWnVAhxypb/bDS/8S0KICVgPbqzirYmC"},
	{"$5$x", strings.Repeat("a", 100), "$5$x$2Bj4hxpwCYDap2E9mUKBUy1vwLSpfX./wV5XElIIsm."},
	{"$6$saltstring", "Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{"$6$rounds=10000$saltstringsaltstring", "Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
	{"$6$rounds=5000$toolongsaltstring", "Hello world!", "$6$rounds=5000$toolongsaltstrin$iGlL7EUUfzNQx59x3ydJZ.zXPMUu1dOynSEl/vcNhLlas77qD0DzRswhhB6LdrXTz250at0syAfUXra.XrxAI1"},
	{"$6$rounds=10$roundstoolow", "Hello world!", "$6$rounds=1000$roundstoolow$VTiyBzzTJoDUzG2edg6tTfnH44buhC6xQa2y1SRnr1w/dVOBbXKE612uZFeIlMGZ8MgLiap2x5mD5IOra0fN00"},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		got, err := Crypt(v.password, v.setting)
		if err != nil || got != v.want {
			t.Errorf("Crypt(%q, %q) = %q, %v; want %q", v.password, v.setting, got, err, v.want)
		}
		if !Verify(v.want, v.password) || Verify(v.want, v.password+"x") {
			t.Errorf("Verify(%q) does not tell the password from another", v.want)
		}
	}
}

func TestFreshHashes(t *testing.T) {
	h := SHA512("correct horse battery staple")
	if !strings.HasPrefix(h, "$6$") || len(h) != 3+16+1+86 || !IsHash(h) {
		t.Fatalf("SHA512 gave %q", h)
	}
	if !Verify(h, "correct horse battery staple") || h == SHA512("correct horse battery staple") {
		t.Fatal("a fresh hash must verify and use a fresh salt")
	}
	if h := SHA256("x"); !strings.HasPrefix(h, "$5$") || !Verify(h, "x") {
		t.Fatalf("SHA256 gave %q", h)
	}
	for _, s := range []string{"", "plain", "$1$abc$def", "$6$rounds=x$salt$h"} {
		if IsHash(s) {
			t.Errorf("IsHash(%q) = true", s)
		}
	}
}
