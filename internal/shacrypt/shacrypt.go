// Package shacrypt implements the SHA-crypt password hashes ($5$ SHA-256
// and $6$ SHA-512) as published by Ulrich Drepper ("Unix crypt using
// SHA-256 and SHA-512", https://www.akkadia.org/drepper/SHA-crypt.txt),
// the format glibc's crypt(3), cloud-init's chpasswd and Proxmox's
// cipassword take. The standard library and golang.org/x/crypto have none.
package shacrypt

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"hash"
	"strconv"
	"strings"
)

// DefaultRounds is the spec's default; a hash with it omits "rounds=".
const (
	DefaultRounds = 5000
	minRounds     = 1000
	maxRounds     = 999999999
	maxSaltLen    = 16
)

const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// variant is one of the two hashes with its identifier and output
// permutation (the byte triples of the spec's final encoding step).
type variant struct {
	id    string
	new   func() hash.Hash
	order [][3]int
	tail  []int // the last bytes, encoded as b64_from_24bit(0, tail[0]?, tail[1], n)
}

var sha256Variant = variant{id: "5", new: sha256.New, order: [][3]int{
	{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14},
	{15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29},
}, tail: []int{31, 30}}

var sha512Variant = variant{id: "6", new: sha512.New, order: [][3]int{
	{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48},
	{28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13},
	{56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41},
}, tail: []int{63}}

// SHA512 hashes password with a fresh random salt and the default rounds:
// "$6$<16 salt chars>$<86 chars>".
func SHA512(password string) string {
	return sha512Variant.crypt(password, NewSalt(), DefaultRounds, false)
}

// SHA256 is SHA512's $5$ sibling (what Proxmox's encrypt_pw produces).
func SHA256(password string) string {
	return sha256Variant.crypt(password, NewSalt(), DefaultRounds, false)
}

// Crypt hashes password with the setting of an existing hash or a salt
// string ("$6$salt", "$5$rounds=10000$salt$…"), as crypt(3) does.
func Crypt(password, setting string) (string, error) {
	var v variant
	switch {
	case strings.HasPrefix(setting, "$6$"):
		v = sha512Variant
	case strings.HasPrefix(setting, "$5$"):
		v = sha256Variant
	default:
		return "", errors.New("shacrypt: setting is neither $5$ nor $6$")
	}
	rest := setting[3:]
	rounds, explicit := DefaultRounds, false
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		digits, after, found := strings.Cut(r, "$")
		n, err := strconv.ParseUint(digits, 10, 64)
		if !found || err != nil {
			return "", errors.New("shacrypt: bad rounds")
		}
		rounds, explicit, rest = int(min(max(n, minRounds), maxRounds)), true, after
	}
	salt, _, _ := strings.Cut(rest, "$")
	return v.crypt(password, salt, rounds, explicit), nil
}

// Verify reports whether password hashes to hash.
func Verify(hash, password string) bool {
	got, err := Crypt(password, hash)
	return err == nil && subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
}

// IsHash reports whether s looks like a SHA-crypt hash ($5$ or $6$).
func IsHash(s string) bool {
	_, err := Crypt("", s)
	return err == nil && strings.Count(s, "$") >= 3
}

// NewSalt returns 16 random characters of the crypt alphabet.
func NewSalt() string {
	b := make([]byte, maxSaltLen)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = itoa64[int(b[i])%len(itoa64)]
	}
	return string(b)
}

func (v variant) crypt(password, salt string, rounds int, explicitRounds bool) string {
	if len(salt) > maxSaltLen {
		salt = salt[:maxSaltLen]
	}
	p, s := []byte(password), []byte(salt)
	sum := func(parts ...[]byte) []byte {
		h := v.new()
		for _, part := range parts {
			h.Write(part)
		}
		return h.Sum(nil)
	}
	b := sum(p, s, p)
	size := len(b)

	h := v.new()
	h.Write(p)
	h.Write(s)
	h.Write(repeatTo(b, len(p)))
	for n := len(p); n > 0; n >>= 1 {
		if n&1 == 1 {
			h.Write(b)
		} else {
			h.Write(p)
		}
	}
	a := h.Sum(nil)

	pBytes := repeatTo(sum(repeat(p, len(p))...), len(p))
	sBytes := repeatTo(sum(repeat(s, 16+int(a[0]))...), len(s))

	c := a
	for i := range rounds {
		h := v.new()
		if i%2 == 1 {
			h.Write(pBytes)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sBytes)
		}
		if i%7 != 0 {
			h.Write(pBytes)
		}
		if i%2 == 1 {
			h.Write(c)
		} else {
			h.Write(pBytes)
		}
		c = h.Sum(nil)
	}

	var out strings.Builder
	out.WriteString("$" + v.id + "$")
	if explicitRounds {
		out.WriteString("rounds=" + strconv.Itoa(rounds) + "$")
	}
	out.WriteString(salt + "$")
	for _, t := range v.order {
		encode24(&out, c[t[0]], c[t[1]], c[t[2]], 4)
	}
	if size == sha512.Size {
		encode24(&out, 0, 0, c[v.tail[0]], 2)
	} else {
		encode24(&out, 0, c[v.tail[0]], c[v.tail[1]], 3)
	}
	return out.String()
}

func encode24(out *strings.Builder, b2, b1, b0 byte, n int) {
	w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
	for range n {
		out.WriteByte(itoa64[w&0x3f])
		w >>= 6
	}
}

func repeat(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// repeatTo is b repeated and cut to exactly n bytes.
func repeatTo(b []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, b[:min(len(b), n-len(out))]...)
	}
	return out
}
