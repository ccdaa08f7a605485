package domain

import (
	"errors"

	"github.com/google/uuid"
)

// Personal data in events. Every field listed here is encrypted, before the
// event is appended, with a key of the person it belongs to (privacy.Sealer),
// so that destroying that key (erasure, docs/PRIVACY.md) makes the field
// unreadable in the log, on the bus and in every copy of them, while the
// hash chain, which covers the ciphertext, stays intact. Readers see the
// plaintext while the key exists and Erased after.
//
// A field is a top-level JSON key of the event's data holding a string. Its
// subject is the user the data is about: the id of the event's stream (the
// user's own stream) or the user id held in another field of the same event.
// Request metadata (client IP, user agent) is personal to the actor of every
// event and is not listed: privacy.Sealer encrypts it for all of them.

// Erased stands, in an event served to anyone, for a personal value whose
// key was destroyed: by the person's erasure, or by the tenant's retention of
// request metadata.
const Erased = "[erased]"

// SubjectFromStream marks fields whose subject is the event's stream id.
const SubjectFromStream = ""

// PersonalFields says, for one event type, which data fields are personal and
// where their subject's id is.
type PersonalFields struct {
	Fields []string
	// SubjectField is the data field holding the subject's user id, or
	// SubjectFromStream.
	SubjectField string
}

// personalFields is the one table of personal data in event data, by event
// type. domain/personal_test.go checks each entry names real string fields.
var personalFields = map[string]PersonalFields{
	"user_created":         {Fields: []string{"email", "display_name"}},
	"user_ssh_key_added":   {Fields: []string{"name", "public_key"}},
	"user_identity_linked": {Fields: []string{"subject"}},
	"oidc_signed_in":       {Fields: []string{"subject"}, SubjectField: "user_id"},
	// The asker's words and the answer to them (docs/ASSISTANT.md).
	"assistant_question_answered": {Fields: []string{"question", "answer"}, SubjectField: "user_id"},
}

// PersonalFieldsOf is the personal data of eventType's events (false: none).
func PersonalFieldsOf(eventType string) (PersonalFields, bool) {
	p, ok := personalFields[eventType]
	return p, ok
}

// PersonalEventTypes lists the event types with personal data fields.
func PersonalEventTypes() []string {
	out := make([]string, 0, len(personalFields))
	for t := range personalFields {
		out = append(out, t)
	}
	return out
}

// UserErased records that a person's data was erased at their request (the
// right to erasure): their keys are destroyed in the same transaction, so
// every personal field they are the subject of reads Erased from then on,
// and read models drop what they held of them. It carries nothing personal.
type UserErased struct {
	// Reason is why: "request" (POST /v1/users/{id}/erase) or "admin"
	// (accountdb admin erase-user).
	Reason string `json:"reason"`
}

func (UserErased) EventType() string { return "user_erased" }

// UserErasedStatus is the status of an erased user: they exist no more for
// any command or read, only their stream's ciphertext remains.
const UserErasedStatus UserStatus = "erased"

// ErrErasureConfirmation: an erasure was asked without the user's email as
// its confirmation, or with another one. HTTP 422.
var ErrErasureConfirmation = errors.New("confirm_email must be the user's email: erasure cannot be undone")

// Erase decides the erasure of the user; confirmEmail must be their email.
func (u *User) Erase(confirmEmail, reason string) ([]Event, error) {
	if !u.Exists() {
		return nil, ErrNotFound
	}
	if confirmEmail == "" || NormalizeEmail(confirmEmail) != u.Email {
		return nil, ErrErasureConfirmation
	}
	return []Event{&UserErased{Reason: reason}}, nil
}

// EraseWithoutConfirmation decides an erasure asked by an operator who named
// the user by id (accountdb admin erase-user), also for a user whose email
// can no longer be read.
func (u *User) EraseWithoutConfirmation(reason string) ([]Event, error) {
	if !u.Exists() {
		return nil, ErrNotFound
	}
	return []Event{&UserErased{Reason: reason}}, nil
}

// SubjectOf is the subject of eventType's personal fields in an event of
// stream streamID whose subject field (if any) holds field.
func SubjectOf(p PersonalFields, streamID uuid.UUID, field uuid.UUID) uuid.UUID {
	if p.SubjectField == SubjectFromStream {
		return streamID
	}
	return field
}
