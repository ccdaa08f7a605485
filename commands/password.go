package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// checkCurrentPassword checks the current password a user gives to change
// their own. It is a password guess like a sign-in, so it goes through the
// same throttles under the same keys (the account's email, the client's
// address): a wrong one counts as a failed sign-in and is recorded, and a
// locked account can neither sign in nor keep guessing here. As with Login,
// a throttle that cannot answer or record gives no verdict.
func (h *Handler) checkCurrentPassword(ctx context.Context, a Actor, tenant uuid.UUID, current string) error {
	if h.tables == nil {
		return ErrNoTables
	}
	cred, found, err := h.tables.Credentials().Of(ctx, tenant, a.UserID)
	if err != nil {
		return err
	}
	if !found {
		return domain.ErrNotFound
	}
	acctKey, addrKey := "acct:"+cred.Email, "ip:"+a.Metadata.ClientIP
	throttled, err := h.allowAttempt(ctx, acctKey, addrKey)
	if err != nil {
		return err
	}
	if throttled != nil {
		_ = h.record(ctx, a, tenant, &domain.PasswordCheckFailed{UserID: a.UserID, Reason: "throttled"})
		return throttled
	}
	ok, err := h.passwords.Verify(current, cred.PasswordHash)
	if err != nil || !ok {
		throttleErr := errors.Join(h.sessions.AccountThrottle.Failure(ctx, acctKey), h.sessions.AddressThrottle.Failure(ctx, addrKey))
		if err := h.record(ctx, a, tenant, &domain.PasswordCheckFailed{UserID: a.UserID, Reason: "bad_current_password"}); err != nil {
			return err
		}
		if throttleErr != nil {
			return fmt.Errorf("%w: %w", ErrThrottleUnavailable, throttleErr)
		}
		return &domain.ValidationError{Fields: map[string]string{"current_password": "is not correct"}}
	}
	if err := h.sessions.AccountThrottle.Success(ctx, acctKey); err != nil {
		return fmt.Errorf("%w: %w", ErrThrottleUnavailable, err)
	}
	return nil
}

// allowAttempt asks the account and the address throttle whether a password
// may be tried now: a ThrottledError when either says no, an
// ErrThrottleUnavailable when either cannot answer.
func (h *Handler) allowAttempt(ctx context.Context, acctKey, addrKey string) (*ThrottledError, error) {
	if h.sessions.AccountThrottle == nil || h.sessions.AddressThrottle == nil {
		return nil, fmt.Errorf("%w: no throttle configured", ErrThrottleUnavailable)
	}
	for _, th := range []struct {
		t   auth.Throttle
		key string
	}{{h.sessions.AccountThrottle, acctKey}, {h.sessions.AddressThrottle, addrKey}} {
		ok, wait, err := th.t.Allow(ctx, th.key)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrThrottleUnavailable, err)
		}
		if !ok {
			return &ThrottledError{RetryAfter: wait}, nil
		}
	}
	return nil, nil
}
