package domain

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"unicode/utf8"
)

// CloudInit is what a VM's guest is given at boot: the user, their keys,
// the hostname and DNS. The password is only ever here as a SHA-512 crypt
// hash: the clear text never reaches an event, the bus, a log or Proxmox.
type CloudInit struct {
	User               string   `json:"user,omitempty"`
	Hostname           string   `json:"hostname"`
	PasswordHash       string   `json:"password_hash,omitempty"`
	SSHKeys            []string `json:"ssh_keys,omitempty"` // authorized_keys lines
	SSHKeyFingerprints []string `json:"ssh_key_fingerprints,omitempty"`
	Nameservers        []string `json:"nameservers,omitempty"`
	SearchDomain       string   `json:"search_domain,omitempty"`
}

// CloudInitInput is cloud_init as a client sends it; ssh_key_ids are
// resolved to SSHKeys by the caller.
type CloudInitInput struct {
	User         string
	SSHKeys      []string
	Password     string
	Hostname     string
	Nameservers  []string
	SearchDomain string
}

// Limits of cloud-init settings.
const (
	MinCloudInitPassword = 12
	maxCloudInitPassword = 256
	maxCloudInitKeys     = 32
	maxNameservers       = 3 // resolv.conf's MAXNS
)

var (
	// linuxUserPattern is useradd's portable name (NAME_REGEX's default).
	linuxUserPattern = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	dnsLabelPattern  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// NewCloudInit validates cloud_init for a VM named vmName (the hostname's
// default) and hashes the password at once with hashPassword (SHA-512
// crypt, given by the caller: the domain imports nothing of ours). Errors
// name the fields as the request spells them ("cloud_init.hostname",
// "cloud_init.ssh_keys[1]").
func NewCloudInit(in CloudInitInput, vmName string, hashPassword func(string) string) (CloudInit, error) {
	f := fieldErrors{}
	const p = "cloud_init."
	ci := CloudInit{User: strings.TrimSpace(in.User), Hostname: strings.ToLower(strings.TrimSpace(in.Hostname))}
	if ci.User != "" && !linuxUserPattern.MatchString(ci.User) {
		f.add(p+"user", "must be a Linux user name: a lower-case letter or _, then letters, digits, _ or -, at most 32")
	}
	if ci.Hostname == "" {
		ci.Hostname = vmName
	}
	if !dnsLabelPattern.MatchString(ci.Hostname) {
		f.add(p+"hostname", "must be a DNS label: lower-case letters, digits and hyphens, at most 63")
	}
	if in.Password != "" {
		switch n := utf8.RuneCountInString(in.Password); {
		case !utf8.ValidString(in.Password) || strings.ContainsFunc(in.Password, isControl):
			f.add(p+"password", "must be text without control characters")
		case n < MinCloudInitPassword:
			f.add(p+"password", fmt.Sprintf("must be at least %d characters", MinCloudInitPassword))
		case n > maxCloudInitPassword:
			f.add(p+"password", fmt.Sprintf("must be at most %d characters", maxCloudInitPassword))
		}
	}
	if len(in.SSHKeys) > maxCloudInitKeys {
		f.add(p+"ssh_keys", fmt.Sprintf("at most %d keys", maxCloudInitKeys))
	}
	seen := map[string]bool{}
	for i, line := range in.SSHKeys {
		k, err := ParseSSHPublicKey(line)
		if err != nil {
			f.add(fmt.Sprintf("%sssh_keys[%d]", p, i), err.Error())
			continue
		}
		if !seen[k.Fingerprint] {
			seen[k.Fingerprint] = true
			ci.SSHKeys = append(ci.SSHKeys, k.Bare)
			ci.SSHKeyFingerprints = append(ci.SSHKeyFingerprints, k.Fingerprint)
		}
	}
	if len(in.Nameservers) > maxNameservers {
		f.add(p+"nameservers", fmt.Sprintf("at most %d", maxNameservers))
	}
	for i, ns := range in.Nameservers {
		a, err := netip.ParseAddr(strings.TrimSpace(ns))
		if err != nil || a.Zone() != "" || a.IsUnspecified() {
			f.add(fmt.Sprintf("%snameservers[%d]", p, i), "must be an IPv4 or IPv6 address")
			continue
		}
		ci.Nameservers = append(ci.Nameservers, a.String())
	}
	if sd := strings.ToLower(strings.TrimSpace(in.SearchDomain)); sd != "" {
		if !isDNSName(sd) {
			f.add(p+"search_domain", "must be a DNS name (labels of lower-case letters, digits and hyphens)")
		}
		ci.SearchDomain = sd
	}
	if err := f.err(); err != nil {
		return CloudInit{}, err
	}
	if in.Password != "" {
		ci.PasswordHash = hashPassword(in.Password)
	}
	return ci, nil
}

func isDNSName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !dnsLabelPattern.MatchString(label) {
			return false
		}
	}
	return true
}
