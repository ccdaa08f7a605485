// Package auth holds AccountDB's identity primitives: password hashing,
// access and refresh tokens, login throttling and the RBAC vocabulary. It is
// pure library code: no database, no HTTP. The API layer wires it to the
// login/refresh/logout routes and to the authorization middleware.
//
// # Passwords
//
// Passwords are hashed with argon2id and stored as PHC strings
// ($argon2id$v=19$m=19456,t=2,p=1$salt$hash). The defaults are OWASP's
// minimum (19 MiB, two passes, one lane). Verify reads the parameters from
// the stored string, so the cost can be raised later without invalidating
// existing hashes; NeedsRehash tells the caller to re-hash after a successful
// login. VerifyDummy spends the same time as a real verification so an
// unknown email and a wrong password cannot be told apart by timing.
// Parameters read from a stored hash are bounded, so a corrupted row cannot
// make the process allocate gigabytes.
//
// # Access tokens
//
// Access tokens are JWTs signed with Ed25519 ("EdDSA"). The algorithm is
// pinned: the Verifier accepts EdDSA only and only with an ed25519.PublicKey
// selected by the token's kid header, which rules out alg=none, HMAC with the
// public key as secret, and RSA/ECDSA confusion. iss, aud, exp and iat are
// required; sub, tid (tenant) and sid (session) must be UUIDs; jti is a
// UUIDv7. The token carries no PII (no email), only identifiers and role
// names; permissions are derived from the roles with PermissionsOf. Tokens
// longer than MaxTokenLength, or with other than three segments, are
// rejected before any decoding.
//
// Every verification failure wraps ErrInvalidToken. The wrapped detail
// (expired, bad signature, unknown kid...) is meant for logs; clients only
// ever get a 401.
//
// A KeySet holds the current signing key and older public keys that still
// verify. kid is the RFC 7638 thumbprint of the public key (RFC 8037 OKP
// members), base64url without padding. To rotate: start issuing with the new
// key while keeping the old public key in the set for at least the access
// token lifetime plus leeway, then drop it. External identity providers
// (JWKS) are not handled here.
//
// # Refresh tokens
//
// Refresh tokens are opaque: base64url(session id || 32 random bytes). The
// session id prefix lets the server find the session directly; only the
// SHA-256 of the token is stored and compared in constant time. Rotation and
// reuse detection (a rotated token revokes its session) are the caller's job.
//
// # Throttling
//
// Throttle is the contract of the login throttle: failures counted per key
// ("acct:<email>", "ip:<addr>"), a lockout after ThrottleConfig.MaxFailures
// within a window, doubling on each further lockout. This package defines the
// semantics only; auth/pgthrottle keeps the counts in PostgreSQL so that
// every API replica shares them.
//
// # RBAC
//
// Permissions are resource:action strings; the built-in roles mirror Proxmox
// VE's (viewer≈PVEAuditor, operator≈PVEVMUser, vm_admin≈PVEVMAdmin, plus
// tenant_admin, auditor and platform_admin). RolesGrantable enforces that
// nobody grants a permission they do not hold.
package auth
