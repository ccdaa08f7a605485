package auth

import "github.com/google/uuid"

// SeesEventMetadata reports whether a reader sees the request metadata of an
// event (client IP, user agent, session and request id): where and how
// someone acted is audit information, so holders of PermAuditRead see it on
// every event and anyone else on the events they caused themselves only.
func SeesEventMetadata(auditRead bool, reader, actor uuid.UUID) bool {
	return auditRead || (actor != uuid.Nil && actor == reader)
}
