package api

import "time"

// Limits bounds what one client can take of a process: concurrent NDJSON
// exports and event streams, per user and per tenant, and how long the
// HTTP server waits on a client. Zero fields take the defaults below
// (README.md, "Configuration"; docs/SECURITY.md, "Limits and caps"). The
// caps are per process: each replica counts its own.
type Limits struct {
	// Concurrent GET /v1/audit exports (Accept: application/x-ndjson).
	ExportsPerUser, ExportsPerTenant int
	// Concurrent GET /v1/events streams.
	StreamsPerUser, StreamsPerTenant int
	// Concurrent consoles (POST /v1/vms/{id}/console and its WebSocket),
	// per user, per VM (whoever opened them) and per tenant.
	ConsolesPerUser, ConsolesPerVM, ConsolesPerTenant int
	// ConsoleIdleTimeout closes a console through which no byte has moved
	// for this long; ConsoleCheckInterval is how often an open console
	// re-checks its session, the vm:console permission and the VM.
	ConsoleIdleTimeout, ConsoleCheckInterval time.Duration
	// ExportWriteTimeout drops an export whose client has taken no bytes
	// for this long (the export extends its own deadline as it writes).
	ExportWriteTimeout time.Duration

	// The HTTP server's (net/http.Server's): reading the request headers,
	// the whole request, writing the answer, and keeping an idle
	// keep-alive connection. Streams and exports extend their own.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

// DefaultLimits are the limits a zero field takes. The server's write
// timeout is above the pool's 60 s statement timeout, so a slow query
// answers its own error before the connection is cut.
var DefaultLimits = Limits{
	ExportsPerUser: 2, ExportsPerTenant: 8,
	StreamsPerUser: 16, StreamsPerTenant: 256,
	ConsolesPerUser: 4, ConsolesPerVM: 4, ConsolesPerTenant: 32,
	ConsoleIdleTimeout: 15 * time.Minute, ConsoleCheckInterval: 5 * time.Second,
	ExportWriteTimeout: 30 * time.Second,
	ReadHeaderTimeout:  10 * time.Second, ReadTimeout: 30 * time.Second,
	WriteTimeout: 120 * time.Second, IdleTimeout: 120 * time.Second,
}

// WithDefaults is l with every zero (or negative) field set from
// DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits
	orInt := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	orDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	orInt(&l.ExportsPerUser, d.ExportsPerUser)
	orInt(&l.ExportsPerTenant, d.ExportsPerTenant)
	orInt(&l.StreamsPerUser, d.StreamsPerUser)
	orInt(&l.StreamsPerTenant, d.StreamsPerTenant)
	orInt(&l.ConsolesPerUser, d.ConsolesPerUser)
	orInt(&l.ConsolesPerVM, d.ConsolesPerVM)
	orInt(&l.ConsolesPerTenant, d.ConsolesPerTenant)
	orDur(&l.ConsoleIdleTimeout, d.ConsoleIdleTimeout)
	orDur(&l.ConsoleCheckInterval, d.ConsoleCheckInterval)
	orDur(&l.ExportWriteTimeout, d.ExportWriteTimeout)
	orDur(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	orDur(&l.ReadTimeout, d.ReadTimeout)
	orDur(&l.WriteTimeout, d.WriteTimeout)
	orDur(&l.IdleTimeout, d.IdleTimeout)
	return l
}
