package domain

import (
	"time"

	"github.com/google/uuid"
)

// Aggregate is an aggregate rebuilt by applying its recorded events in order.
type Aggregate interface {
	Apply(e Event, at time.Time)
	Exists() bool
}

// NewAggregate is the empty aggregate of a stream type, for tools that
// replay any stream (time travel, `accountdb replay`); false for stream types
// without one (sessions, foreign streams).
func NewAggregate(streamType string, tenant, id uuid.UUID) (Aggregate, bool) {
	switch streamType {
	case StreamTenant:
		return &Tenant{ID: id}, true
	case StreamUser:
		return &User{ID: id, TenantID: tenant}, true
	case StreamVM:
		return &VM{ID: id, TenantID: tenant}, true
	case StreamCluster:
		return &Cluster{ID: id}, true
	case StreamIPPool:
		return &IPPool{ID: id}, true
	}
	return nil, false
}
