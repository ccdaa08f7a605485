// Package privacy keeps personal data in AccountDB's insert-only, hashed event
// log erasable: crypto-shredding. Personal fields of events (domain's table,
// PersonalFieldsOf) and every event's request metadata (client IP, user
// agent) are encrypted before the append (Sealer) with a data key of the
// person they are about; the keys live in their own table (subject_keys),
// each sealed with the service's secrets key (vault). Readers get the
// plaintext back through Revealer while the key exists, and domain.Erased
// once it is destroyed: by the person's erasure (the whole subject), or by
// the tenant's retention of request metadata (the keys of days older than
// the policy). The log keeps the ciphertext, which the hash chain covers, so
// `audit verify` stays intact forever. docs/PRIVACY.md has the whole story.
package privacy
