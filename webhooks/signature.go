package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// The Standard Webhooks signing scheme (https://www.standardwebhooks.com):
// the signed content is "<webhook-id>.<webhook-timestamp>.<body>", the
// signature HMAC-SHA256 with the secret's bytes (the base64 after whsec_),
// sent as "v1,<base64>"; several are sent space-separated (during a
// secret's rotation, one per secret).

// Header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// ErrSecret: a secret that is not whsec_ and base64.
var ErrSecret = errors.New("webhooks: a secret is whsec_ followed by base64")

// DecodeSecret is the key bytes of a whsec_ secret.
func DecodeSecret(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, ErrSecret
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < 16 {
		return nil, ErrSecret
	}
	return key, nil
}

// Sign is the webhook-signature header for body sent as msgID at unix
// time ts, signed with each key.
func Sign(keys [][]byte, msgID string, ts int64, body []byte) string {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(msgID))
		mac.Write([]byte{'.'})
		mac.Write([]byte(strconv.FormatInt(ts, 10)))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs[i] = "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	return strings.Join(sigs, " ")
}

// messageNamespace derives message ids.
var messageNamespace = uuid.MustParse("0b9d4c2e-7f5a-4e0b-9a57-5d1c4f3e8a21")

// MessageID is the webhook-id of event to endpoint: the same on every
// retry and redelivery, so a receiver can drop duplicates by it, and
// different for each endpoint.
func MessageID(endpoint, event uuid.UUID) string {
	return "msg_" + uuid.NewSHA1(messageNamespace, append(endpoint[:], event[:]...)).String()
}
