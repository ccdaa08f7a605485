// Package feed serves GET /v1/events: a tenant's events, live, as
// Server-Sent Events (docs/EVENTS.md, "Live subscribers"). The api package
// authenticates the caller and hands the request over (Feed.Serve); what the
// feed needs from the rest of the system are the ports in ports.go.
//
// The live tail comes from the tenant's hub (hub.go): one ordered consumer
// per tenant per API process, filtered on that tenant's subjects only, so
// another tenant's events never reach this process's buffers for it. A
// resumed connection first reads the past through its own ordered consumer
// (same filter): its catch-up phase (catchup.go), then its live phase
// (live.go).
//
//   - Permission: vm:read lets a subscriber see the VM events of its tenant
//     (subjects accountdb.events.<tenant>.vm.*); with audit:read too it sees
//     every event of its tenant (users, sessions, denials: the audit log).
//   - ?type= (repeatable) narrows to event types; each must be a lower snake
//     case identifier (the event type pattern), at most maxEventTypes.
//   - Last-Event-ID: P resumes after the event at global position P, which
//     must be an event of the caller's tenant: the stream then starts at the
//     first message after P in log order, and every message at or before P is
//     skipped, so a reconnect neither repeats nor loses an event. "0" starts
//     at the beginning of the log. Any other value (malformed, unknown, or
//     another tenant's event: the same answer) is a 400, never a silent
//     restart from now. Without the header the feed starts now.
//   - A comment (": ping") every Heartbeat keeps proxies from closing an idle
//     stream; at each one the session is checked again, and a session that
//     ended or lost the permission the stream was opened with ends it. An
//     event of Config.RevokingTypes (a suspension, a user disabled or
//     demoted, sessions ended) passing the tenant's hub has every
//     subscriber of the tenant check at once, without waiting for it.
//   - Backpressure: the hub hands each event to a channel of Buffer events
//     per connection and never waits. A client that falls so far behind that
//     it fills (the socket buffers are full first) is dropped, and so is one
//     that does not take a write within WriteTimeout: the server closes the
//     stream and the client resumes with Last-Event-ID. Nothing grows
//     without bound, and no client slows another.
package feed
