package domaintest

import (
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// webhooks gives tenant two endpoints: one through every change
// (rotation, replay, disabling, re-enabling) and deleted, one
// with a redelivery asked for; with platform, the second is platform-wide.
func (c *corpus) webhooks(tenant uuid.UUID, platform bool) {
	sealed := "v1:" + c.hash() // the shape of a vault-sealed secret, never a clear one
	c.add(tenant, domain.StreamWebhook,
		&domain.WebhookCreated{URL: "https://hooks.example/" + name(c.r, "a"), EventTypes: []string{"vm_*"}, Enabled: true, SealedSecret: sealed},
		&domain.WebhookUpdated{URL: "https://hooks.example/b", EventTypes: []string{"*"}, Description: "billing", Enabled: true},
		&domain.WebhookSecretRotated{SealedSecret: "v1:" + c.hash(), PreviousValidUntil: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		&domain.WebhookReplayRequested{FromPosition: 1 + int64(c.r.IntN(1000))},
		&domain.WebhookDisabled{Reason: "the endpoint answered 410 Gone", EventPosition: 1 + int64(c.r.IntN(1000))},
		&domain.WebhookUpdated{URL: "https://hooks.example/b", EventTypes: []string{"*"}, Enabled: true},
		&domain.WebhookDeleted{})
	c.add(tenant, domain.StreamWebhook,
		&domain.WebhookCreated{URL: "https://hooks.example/" + name(c.r, "c"), EventTypes: []string{"vm_created", "user_*"},
			Enabled: true, Platform: platform, SealedSecret: "v1:" + c.hash()},
		&domain.WebhookRedeliveryRequested{DeliveryID: id(c.r), EventPosition: 1 + int64(c.r.IntN(1000)), EventTenantID: tenant})
}
