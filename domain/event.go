// Package domain holds AccountDB's aggregates (tenants, users, VMs, clusters),
// their events and their invariants. It is pure Go: no database, bus or HTTP.
// An aggregate's command methods check invariants and return the events that
// record the decision; Apply is the only place state changes.
package domain

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Event is a fact recorded in an aggregate's stream. EventType is the stored
// type name: stable, lower snake case, never reused for another meaning.
type Event interface {
	EventType() string
}

// Stream types, one per aggregate.
const (
	StreamTenant  = "tenant"
	StreamUser    = "user"
	StreamSession = "session"
	StreamAuth    = "auth"
)

// eventFactories maps each stored type name to a constructor. Each aggregate's
// file lists its events; adding one there is all decoding needs.
var eventFactories = registry(tenantEvents, userEvents, sessionEvents, vmEvents, vmAccessEvents, vmSnapshotEvents, vmBackupEvents, backupScheduleEvents, clusterEvents, ipPoolEvents, consoleEvents, apiTokenEvents, mfaEvents, idpEvents, webhookEvents, assistantEvents)

func registry(lists ...[]func() Event) map[string]func() Event {
	m := map[string]func() Event{}
	for _, list := range lists {
		for _, f := range list {
			m[f().EventType()] = f
		}
	}
	return m
}

// DecodeEvent turns a stored event's type and data back into its Go value.
func DecodeEvent(eventType string, data []byte) (Event, error) {
	f, ok := eventFactories[eventType]
	if !ok {
		return nil, fmt.Errorf("domain: unknown event type %q", eventType)
	}
	e := f()
	if err := json.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("domain: decode %s: %w", eventType, err)
	}
	return e, nil
}

// EventTypes lists every event type the domain defines, sorted.
func EventTypes() []string {
	return slices.Sorted(maps.Keys(eventFactories))
}

// KnownEventType reports whether the domain defines eventType.
func KnownEventType(eventType string) bool {
	_, ok := eventFactories[eventType]
	return ok
}
