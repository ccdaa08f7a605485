package domain

import (
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"
)

// SSH keys of a user, recorded on the user's stream. A public key is public
// data, so the events carry it whole: the agent writes it into guests.
type (
	UserSSHKeyAdded struct {
		KeyID       uuid.UUID `json:"key_id"`
		Name        string    `json:"name"`
		Type        string    `json:"type"`
		Fingerprint string    `json:"fingerprint"`
		PublicKey   string    `json:"public_key"`
	}
	UserSSHKeyRemoved struct {
		KeyID       uuid.UUID `json:"key_id"`
		Fingerprint string    `json:"fingerprint"`
	}
)

func (UserSSHKeyAdded) EventType() string   { return "user_ssh_key_added" }
func (UserSSHKeyRemoved) EventType() string { return "user_ssh_key_removed" }

// UserSSHKey is what the user aggregate keeps of a key: enough to refuse a
// duplicate, to remove it, and to give it to a VM by its id.
type UserSSHKey struct {
	ID          uuid.UUID
	Fingerprint string
	PublicKey   string // authorized_keys form
}

// MaxSSHKeysPerUser bounds what one user can store.
const MaxSSHKeysPerUser = 100

// maxPublicKeyLength is far above a 16384-bit RSA key with a long comment.
const maxPublicKeyLength = 8192

// MinRSABits is the smallest RSA modulus accepted (NIST SP 800-57's
// 128-bit security level; 2048-bit keys are refused).
const MinRSABits = 3072

// SSHPublicKey is a validated OpenSSH public key.
type SSHPublicKey struct {
	// Type is the key's algorithm name: ssh-ed25519, ecdsa-sha2-nistp256,
	// ecdsa-sha2-nistp384, ecdsa-sha2-nistp521 or ssh-rsa.
	Type string
	// Fingerprint is "SHA256:" and the unpadded base64 of the key's SHA-256.
	Fingerprint string
	// AuthorizedKey is the key in authorized_keys form, "type base64[ comment]",
	// with no options.
	AuthorizedKey string
	// Bare is the key without its comment, "type base64": what a VM's
	// cloud-init carries (the comment, often user@host, is personal data
	// and would stay in the VM's events after its owner's erasure).
	Bare string
	// Comment is the key's trailing comment, often user@host.
	Comment string
}

var acceptedKeyTypes = []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSA}

// ParseSSHPublicKey accepts exactly one OpenSSH public key line of an
// accepted type (ed25519, ECDSA on the NIST curves, RSA of at least
// MinRSABits); anything else is an error saying why, for the field
// public_key.
func ParseSSHPublicKey(s string) (SSHPublicKey, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return SSHPublicKey{}, fmt.Errorf("is required")
	case len(s) > maxPublicKeyLength:
		return SSHPublicKey{}, fmt.Errorf("must be at most %d bytes", maxPublicKeyLength)
	case strings.ContainsAny(s, "\r\n"):
		return SSHPublicKey{}, fmt.Errorf("must be exactly one public key, on one line")
	case !utf8.ValidString(s):
		return SSHPublicKey{}, fmt.Errorf("is not an OpenSSH public key")
	}
	pub, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(s))
	switch {
	case err != nil:
		return SSHPublicKey{}, fmt.Errorf("is not an OpenSSH public key (ssh-ed25519 AAAA… [comment])")
	case len(options) > 0:
		return SSHPublicKey{}, fmt.Errorf("must not carry authorized_keys options")
	case len(strings.TrimSpace(string(rest))) > 0:
		return SSHPublicKey{}, fmt.Errorf("must be exactly one public key, on one line")
	case !slices.Contains(acceptedKeyTypes, pub.Type()):
		return SSHPublicKey{}, fmt.Errorf("key type %s is not accepted: use ed25519, ecdsa or RSA of at least %d bits", quoteShort(pub.Type()), MinRSABits)
	}
	if pub.Type() == ssh.KeyAlgoRSA {
		ck, ok := pub.(ssh.CryptoPublicKey)
		if !ok {
			return SSHPublicKey{}, fmt.Errorf("is not an OpenSSH public key")
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok || rk.N.BitLen() < MinRSABits {
			bits := 0
			if ok {
				bits = rk.N.BitLen()
			}
			return SSHPublicKey{}, fmt.Errorf("RSA keys must have at least %d bits (this one has %d)", MinRSABits, bits)
		}
	}
	comment = strings.TrimSpace(comment)
	if strings.ContainsFunc(comment, isControl) || len(comment) > 200 {
		return SSHPublicKey{}, fmt.Errorf("the comment must be at most 200 characters without control characters")
	}
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	if comment != "" {
		authorized += " " + comment
	}
	return SSHPublicKey{Type: pub.Type(), Fingerprint: ssh.FingerprintSHA256(pub), AuthorizedKey: authorized,
		Bare: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), Comment: comment}, nil
}

// AddSSHKey decides adding a key to the user. The name defaults to the
// key's comment; the same key (by fingerprint) cannot be added twice.
func (u *User) AddSSHKey(id uuid.UUID, name, publicKey string) ([]Event, error) {
	if !u.Exists() {
		return nil, ErrNotFound
	}
	f := fieldErrors{}
	key, err := ParseSSHPublicKey(publicKey)
	if err != nil {
		f.add("public_key", err.Error())
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = key.Comment
	}
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name) || (n == 0 && err == nil):
		f.add("name", "is required (the key has no comment to default to)")
	case n > 100:
		f.add("name", "must be at most 100 characters")
	case strings.ContainsFunc(name, isControl):
		f.add("name", "must not contain control characters")
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	for _, k := range u.SSHKeys {
		if k.Fingerprint == key.Fingerprint {
			return nil, fmt.Errorf("%w: the user already has this SSH key (%s)", ErrConflict, key.Fingerprint)
		}
	}
	if len(u.SSHKeys) >= MaxSSHKeysPerUser {
		return nil, fmt.Errorf("%w: a user may have at most %d SSH keys", ErrQuotaExceeded, MaxSSHKeysPerUser)
	}
	return []Event{&UserSSHKeyAdded{KeyID: id, Name: name, Type: key.Type, Fingerprint: key.Fingerprint, PublicKey: key.AuthorizedKey}}, nil
}

// RemoveSSHKey decides removing one of the user's keys.
func (u *User) RemoveSSHKey(id uuid.UUID) ([]Event, error) {
	if !u.Exists() {
		return nil, ErrNotFound
	}
	for _, k := range u.SSHKeys {
		if k.ID == id {
			return []Event{&UserSSHKeyRemoved{KeyID: id, Fingerprint: k.Fingerprint}}, nil
		}
	}
	return nil, ErrNotFound
}

// applySSHKey is User.Apply's part for the key events.
func (u *User) applySSHKey(e Event) {
	switch e := e.(type) {
	case *UserSSHKeyAdded:
		u.SSHKeys = append(u.SSHKeys, UserSSHKey{ID: e.KeyID, Fingerprint: e.Fingerprint, PublicKey: e.PublicKey})
	case *UserSSHKeyRemoved:
		u.SSHKeys = slices.DeleteFunc(slices.Clone(u.SSHKeys), func(k UserSSHKey) bool { return k.ID == e.KeyID })
	}
}
