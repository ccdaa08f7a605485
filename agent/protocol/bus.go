package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/jetstreams"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The ACCOUNTDB_AGENT stream's shape.
const (
	// StreamSubjects is the stream's subject filter.
	StreamSubjects = "accountdb.agent.>"
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id: a
	// result re-published after an agent restart inside it is dropped.
	DuplicateWindow = 2 * time.Minute
)

// ErrInvalidMessage is returned for a message that is not a well-formed
// agent message of the expected kind.
var ErrInvalidMessage = errors.New("protocol: invalid agent message")

// EnsureStream creates the ACCOUNTDB_AGENT stream, or updates its
// configuration to the one the protocol relies on: subjects
// accountdb.agent.>, file storage, duplicates remembered for
// DuplicateWindow. Both the core and the agent call it at start. An
// existing stream keeps its replica count.
func EnsureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	return EnsureStreamReplicas(ctx, js, 0)
}

// EnsureStreamReplicas is EnsureStream that also moves the stream to
// replicas copies (ACCOUNTDB_NATS_REPLICAS; zero keeps what it has).
func EnsureStreamReplicas(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	return jetstreams.Ensure(ctx, js, jetstream.StreamConfig{
		Replicas:    replicas,
		Name:        StreamName,
		Description: "AccountDB Proxmox agent: results, observations and inventory",
		Subjects:    []string{StreamSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Duplicates:  DuplicateWindow,
	})
}

// ResultSubject is where results for a tenant's VMs are published.
func ResultSubject(tenant uuid.UUID) string { return ResultSubjectPrefix + tenant.String() }

// ObservationSubject is where a cluster's observations are published.
func ObservationSubject(cluster uuid.UUID) string {
	return ObservationSubjectPrefix + cluster.String()
}

// InventorySubject is where a cluster's inventory is published.
func InventorySubject(cluster uuid.UUID) string { return InventorySubjectPrefix + cluster.String() }

// ResultMsgID is the Nats-Msg-Id of the result of a request event, so that
// JetStream drops a result published twice for the same request.
func ResultMsgID(requestEventID uuid.UUID) string { return "result-" + requestEventID.String() }

// NewResultMsg is the message carrying r, ready for JetStream.PublishMsg.
func NewResultMsg(r Result) (*nats.Msg, error) {
	if r.RequestEventID == uuid.Nil || r.TenantID == uuid.Nil || r.VMID == uuid.Nil || r.Action == "" {
		return nil, fmt.Errorf("%w: a result needs request event, tenant, VM and action", ErrInvalidMessage)
	}
	m, err := newMsg(ResultSubject(r.TenantID), KindResult, r)
	if err != nil {
		return nil, err
	}
	id := ResultMsgID(r.RequestEventID)
	if r.Step != "" {
		id += "-" + r.Step // each step once, and the outcome apart from them
	}
	m.Header.Set(jetstream.MsgIDHeader, id)
	return m, nil
}

// NewObservationMsg is the message carrying o.
func NewObservationMsg(o Observation) (*nats.Msg, error) {
	if o.ClusterID == uuid.Nil {
		return nil, fmt.Errorf("%w: an observation needs its cluster", ErrInvalidMessage)
	}
	if o.Guests == nil {
		o.Guests = []ObservedGuest{}
	}
	return newMsg(ObservationSubject(o.ClusterID), KindObservation, o)
}

// NewInventoryMsg is the message carrying inv.
func NewInventoryMsg(inv Inventory) (*nats.Msg, error) {
	if inv.ClusterID == uuid.Nil {
		return nil, fmt.Errorf("%w: an inventory needs its cluster", ErrInvalidMessage)
	}
	if inv.Nodes == nil {
		inv.Nodes = []Node{}
	}
	if inv.Templates == nil {
		inv.Templates = []Template{}
	}
	return newMsg(InventorySubject(inv.ClusterID), KindInventory, inv)
}

func newMsg(subject, kind string, v any) (*nats.Msg, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", kind, err)
	}
	h := nats.Header{}
	h.Set(HeaderKind, kind)
	return &nats.Msg{Subject: subject, Header: h, Data: data}, nil
}

// MessageKind is the kind of an agent message, from its HeaderKind header.
func MessageKind(h nats.Header) string { return h.Get(HeaderKind) }

// checkText refuses a payload with a string (key or value) that is not
// valid UTF-8 or holds NUL: PostgreSQL would refuse to record it, so the
// message could never succeed and would be redelivered for ever.
func checkText(data []byte) error {
	var v any
	if !utf8.Valid(data) || json.Unmarshal(data, &v) != nil {
		return fmt.Errorf("%w: not UTF-8 JSON", ErrInvalidMessage)
	}
	if !validText(v) {
		return fmt.Errorf("%w: a string is not valid text (UTF-8 without NUL)", ErrInvalidMessage)
	}
	return nil
}

func validText(v any) bool {
	switch v := v.(type) {
	case string:
		return domain.ValidText(v)
	case []any:
		for _, e := range v {
			if !validText(e) {
				return false
			}
		}
	case map[string]any:
		for k, e := range v {
			if !domain.ValidText(k) || !validText(e) {
				return false
			}
		}
	}
	return true
}

// DecodeResult reads a result message's payload.
func DecodeResult(data []byte) (Result, error) {
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	if err := checkText(data); err != nil {
		return Result{}, err
	}
	if r.RequestEventID == uuid.Nil || r.VMID == uuid.Nil || r.TenantID == uuid.Nil || r.Action == "" {
		return Result{}, fmt.Errorf("%w: result without request event, VM, tenant or action", ErrInvalidMessage)
	}
	return r, nil
}

// DecodeObservation reads an observation message's payload.
func DecodeObservation(data []byte) (Observation, error) {
	var o Observation
	if err := json.Unmarshal(data, &o); err != nil {
		return Observation{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	if err := checkText(data); err != nil {
		return Observation{}, err
	}
	if o.ClusterID == uuid.Nil {
		return Observation{}, fmt.Errorf("%w: observation without cluster", ErrInvalidMessage)
	}
	return o, nil
}

// DecodeInventory reads an inventory message's payload.
func DecodeInventory(data []byte) (Inventory, error) {
	var inv Inventory
	if err := json.Unmarshal(data, &inv); err != nil {
		return Inventory{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	if err := checkText(data); err != nil {
		return Inventory{}, err
	}
	if inv.ClusterID == uuid.Nil {
		return Inventory{}, fmt.Errorf("%w: inventory without cluster", ErrInvalidMessage)
	}
	return inv, nil
}

// ParseVMTag reads the AccountDB VM id out of a tag made by VMTag.
func ParseVMTag(tag string) (uuid.UUID, bool) { return parseTag(tag, VMTagPrefix) }

// ParseTenantTag reads the tenant id out of a tag made by TenantTag.
func ParseTenantTag(tag string) (uuid.UUID, bool) { return parseTag(tag, TenantTagPrefix) }

func parseTag(tag, prefix string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(tag)), prefix)
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(rest)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, false
	}
	return id, true
}

// SplitTags splits a PVE tag list; PVE separates tags with ';' and accepts
// ',' and spaces on input.
func SplitTags(tags string) []string {
	return strings.FieldsFunc(tags, func(r rune) bool { return r == ';' || r == ',' || r == ' ' })
}
