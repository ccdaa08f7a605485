package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

// TOTP two-factor (docs/SECURITY.md, "Two-factor"). The secret is sealed
// with the vault, bound to its user; codes are checked by auth.VerifyTOTP
// and each accepted step is recorded, in the transaction that acts on the
// code, so a code is good once.

// TOTPIssuer names AccountDB in authenticator apps.
const TOTPIssuer = "AccountDB"

// MFATokenTTL bounds the time between a password and its second factor.
const MFATokenTTL = 5 * time.Minute

// mfaAudience is the audience of MFA tokens: an access token's verifier
// (audience accountdb-api) refuses them, and the MFA step refuses access
// tokens.
const mfaAudience = "accountdb-mfa"

// Errors of two-factor.
var (
	// ErrTOTPAlreadyOn: enrolment while TOTP is enabled. HTTP 409.
	ErrTOTPAlreadyOn = fmt.Errorf("%w: two-factor is on already; disable it first", domain.ErrConflict)
	// ErrNoTOTP: confirm without a pending enrolment, or disable without
	// TOTP on. HTTP 422.
	ErrNoTOTP = fmt.Errorf("%w: no such two-factor enrolment", domain.ErrInvalidTransition)
	// errBadCode: a code that is wrong, outside its window or used
	// already; answered as a 400 naming code (for an enrolled user's own
	// changes) or a 401 (at sign-in).
	errBadCode = &domain.ValidationError{Fields: map[string]string{"code": "is not a current code of your authenticator"}}
	errReplay  = errors.New("code used already")
)

func totpBinding(user uuid.UUID) string { return "totp:" + user.String() }

// TOTPEnrolment is what an enrolment answers: the secret, and the URI an
// authenticator app reads from a QR code.
type TOTPEnrolment struct {
	Secret, URI string
}

// StartTOTP begins (or restarts) the acting user's enrolment. Nothing is
// recorded until ConfirmTOTP: an enrolment never confirmed is not a fact.
func (h *Handler) StartTOTP(ctx context.Context, a Actor) (TOTPEnrolment, error) {
	if h.tables == nil {
		return TOTPEnrolment{}, ErrNoTables
	}
	if h.vault == nil {
		return TOTPEnrolment{}, ErrNoVault
	}
	if err := h.tenantAcceptsCommands(ctx, a.TenantID); err != nil {
		return TOTPEnrolment{}, err
	}
	cred, found, err := h.tables.Credentials().Of(ctx, a.TenantID, a.UserID)
	if err != nil || !found {
		return TOTPEnrolment{}, errors.Join(err, domain.ErrNotFound)
	}
	secret := auth.NewTOTPSecret()
	sealed, err := h.vault.Seal(secret, totpBinding(a.UserID))
	if err != nil {
		return TOTPEnrolment{}, err
	}
	ok, err := h.tables.MFA().SetPendingTOTP(ctx, a.TenantID, a.UserID, sealed)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	if !ok {
		return TOTPEnrolment{}, ErrTOTPAlreadyOn
	}
	return TOTPEnrolment{Secret: secret, URI: auth.TOTPURI(TOTPIssuer, cred.Email, secret)}, nil
}

// ConfirmTOTP turns a pending enrolment on with its first code and answers
// the recovery codes (only their hashes are kept). An enrolment-only session
// becomes a full one.
func (h *Handler) ConfirmTOTP(ctx context.Context, a Actor, code string) ([]string, error) {
	st, _, err := h.checkOwnCode(ctx, a, code, false)
	if err != nil {
		return nil, err
	}
	codes := auth.NewRecoveryCodes()
	hashes := make([][]byte, len(codes))
	for i, c := range codes {
		hashes[i] = auth.HashRecoveryCode(c)
	}
	_, err = h.commit(ctx, a, Options{}, change{tenant: a.TenantID, stream: userStream(a.UserID), anyVersion: true,
		events: []domain.Event{&domain.UserTOTPEnabled{RecoveryCodes: len(codes)}},
		side: func(ctx context.Context, tx TxTables) error {
			ok, err := tx.MFA().EnableTOTP(ctx, a.UserID, st, hashes)
			if err == nil && !ok {
				return ErrNoTOTP
			}
			if err != nil {
				return err
			}
			return tx.MFA().LiftEnrolmentOnly(ctx, a.UserID)
		}})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// DisableTOTP turns the acting user's TOTP off with a current code.
func (h *Handler) DisableTOTP(ctx context.Context, a Actor, o Options, code string) (Result, error) {
	step, _, err := h.checkOwnCode(ctx, a, code, true)
	if err != nil {
		return Result{}, err
	}
	res, err := h.commit(ctx, a, o, change{tenant: a.TenantID, stream: userStream(a.UserID), anyVersion: true,
		events: []domain.Event{&domain.UserTOTPDisabled{Reason: "disabled"}},
		side: func(ctx context.Context, tx TxTables) error {
			ok, err := tx.MFA().ConsumeStep(ctx, a.UserID, step)
			if err == nil && !ok {
				return errBadCode // used meanwhile by another request
			}
			if err != nil {
				return err
			}
			return tx.MFA().DisableTOTP(ctx, a.UserID)
		}})
	return res, err
}

// checkOwnCode checks a code of the acting user's TOTP (enabled, or
// pending when enabled is false) through the sign-in throttle, like a
// current password: a wrong code counts as a failed sign-in. It answers
// the step the code matched.
func (h *Handler) checkOwnCode(ctx context.Context, a Actor, code string, enabled bool) (int64, string, error) {
	if h.tables == nil {
		return 0, "", ErrNoTables
	}
	if h.vault == nil {
		return 0, "", ErrNoVault
	}
	if err := h.tenantAcceptsCommands(ctx, a.TenantID); err != nil {
		return 0, "", err
	}
	st, found, err := h.tables.MFA().TOTP(ctx, a.TenantID, a.UserID)
	if err != nil {
		return 0, "", err
	}
	if !found || st.Enabled != enabled {
		return 0, "", ErrNoTOTP
	}
	cred, found, err := h.tables.Credentials().Of(ctx, a.TenantID, a.UserID)
	if err != nil || !found {
		return 0, "", errors.Join(err, domain.ErrNotFound)
	}
	acctKey, addrKey := "acct:"+cred.Email, "ip:"+a.Metadata.ClientIP
	throttled, err := h.allowAttempt(ctx, acctKey, addrKey)
	if err != nil {
		return 0, "", err
	}
	if throttled != nil {
		_ = h.record(ctx, a, a.TenantID, &domain.PasswordCheckFailed{UserID: a.UserID, Reason: "throttled"})
		return 0, "", throttled
	}
	secret, err := h.vault.Open(st.Sealed, totpBinding(a.UserID))
	if err != nil {
		return 0, "", err
	}
	step, ok := auth.VerifyTOTP(secret, code, h.now(), st.LastStep)
	if !ok {
		throttleErr := errors.Join(h.sessions.AccountThrottle.Failure(ctx, acctKey), h.sessions.AddressThrottle.Failure(ctx, addrKey))
		if err := h.record(ctx, a, a.TenantID, &domain.PasswordCheckFailed{UserID: a.UserID, Reason: "bad_totp_code"}); err != nil {
			return 0, "", err
		}
		if throttleErr != nil {
			return 0, "", fmt.Errorf("%w: %w", ErrThrottleUnavailable, throttleErr)
		}
		return 0, "", errBadCode
	}
	return step, secret, nil
}

// TOTPStatus is a user's two-factor state as they may see it.
type TOTPStatus struct {
	Enabled, Pending       bool
	RecoveryCodesRemaining int
	Required               bool
}

// TOTPStatusOf is the acting user's two-factor state.
func (h *Handler) TOTPStatusOf(ctx context.Context, a Actor) (TOTPStatus, error) {
	if h.tables == nil {
		return TOTPStatus{}, ErrNoTables
	}
	st, found, err := h.tables.MFA().TOTP(ctx, a.TenantID, a.UserID)
	if err != nil {
		return TOTPStatus{}, err
	}
	out := TOTPStatus{Enabled: found && st.Enabled, Pending: found && !st.Enabled}
	if out.Enabled {
		if out.RecoveryCodesRemaining, err = h.tables.MFA().RemainingRecoveryCodes(ctx, a.TenantID, a.UserID); err != nil {
			return TOTPStatus{}, err
		}
	}
	out.Required, err = h.tables.MFA().RequireMFA(ctx, a.TenantID)
	return out, err
}

// SetMFARequirement sets whether tenant requires two-factor of its users.
func (h *Handler) SetMFARequirement(ctx context.Context, a Actor, o Options, tenant uuid.UUID, required bool) (Result, error) {
	if tenant == domain.PlatformTenant {
		return h.commit(ctx, a, o, change{tenant: tenant, stream: tenantStream(tenant), anyVersion: true,
			events: []domain.Event{&domain.TenantMFARequirementChanged{Required: required}},
			side:   func(ctx context.Context, tx TxTables) error { return tx.MFA().SetRequireMFA(ctx, tenant, required) }})
	}
	return h.onTenantWith(ctx, a, o, tenant, func(t *domain.Tenant) ([]domain.Event, error) {
		if err := t.AcceptsCommands(); err != nil {
			return nil, err
		}
		return []domain.Event{&domain.TenantMFARequirementChanged{Required: required}}, nil
	}, func(ctx context.Context, tx TxTables) error { return tx.MFA().SetRequireMFA(ctx, tenant, required) })
}

// RequiresMFA reports whether tenant requires two-factor.
func (h *Handler) RequiresMFA(ctx context.Context, tenant uuid.UUID) (bool, error) {
	if h.tables == nil {
		return false, ErrNoTables
	}
	return h.tables.MFA().RequireMFA(ctx, tenant)
}

// mfaToken is the proof of a right password that the second step takes:
// signed with the access tokens' keys under its own audience, for
// MFATokenTTL, naming the user and tenant (and no session).
func (h *Handler) mfaToken(cred Credential) (string, error) {
	is := auth.Issuer{Keys: h.sessions.Issuer.Keys, Audience: mfaAudience, TTL: MFATokenTTL, Now: h.now}
	tok, _, err := is.Issue(cred.User, cred.Tenant, uuid.Must(uuid.NewV7()), nil)
	return tok, err
}

// CompleteMFA is a sign-in's second step: the MFA token the password step
// answered, and a current TOTP code or an unused recovery code (exactly
// one). A wrong, reused or out-of-window code is a failed sign-in like a
// wrong password: the same 401, counted by the same throttles, recorded.
func (h *Handler) CompleteMFA(ctx context.Context, meta eventlog.Metadata, mfaToken, code, recoveryCode string) (Tokens, error) {
	if h.tables == nil {
		return Tokens{}, ErrNoTables
	}
	if (code == "") == (recoveryCode == "") {
		return Tokens{}, &domain.ValidationError{Fields: map[string]string{"code": "give exactly one of code and recovery_code"}}
	}
	v := auth.Verifier{Keys: h.sessions.Issuer.Keys, Audience: mfaAudience, Now: h.now}
	claims, err := v.Verify(mfaToken)
	if err != nil {
		return Tokens{}, ErrUnauthenticated
	}
	tenant, user := claims.Tenant(), claims.UserID()
	cred, found, err := h.tables.Credentials().Of(ctx, tenant, user)
	if err != nil {
		return Tokens{}, err
	}
	if !found || cred.Status != domain.UserActive || h.tenantAcceptsCommands(ctx, tenant) != nil {
		return Tokens{}, ErrUnauthenticated
	}
	a := Actor{UserID: user, TenantID: tenant, CorrelationID: uuid.Must(uuid.NewV7()), Metadata: meta}
	acctKey, addrKey := "acct:"+cred.Email, "ip:"+meta.ClientIP
	throttled, err := h.allowAttempt(ctx, acctKey, addrKey)
	if err != nil {
		return Tokens{}, err
	}
	if throttled != nil {
		_ = h.record(ctx, a, tenant, &domain.LoginFailed{UserID: user, EmailHash: hashEmail(cred.Email), Reason: "throttled"})
		return Tokens{}, throttled
	}
	fail := func() (Tokens, error) {
		throttleErr := errors.Join(h.sessions.AccountThrottle.Failure(ctx, acctKey), h.sessions.AddressThrottle.Failure(ctx, addrKey))
		if err := h.record(ctx, a, tenant, &domain.LoginFailed{UserID: user, EmailHash: hashEmail(cred.Email), Reason: "bad_mfa_code"}); err != nil {
			return Tokens{}, err
		}
		if throttleErr != nil {
			return Tokens{}, fmt.Errorf("%w: %w", ErrThrottleUnavailable, throttleErr)
		}
		return Tokens{}, ErrUnauthenticated
	}
	st, found, err := h.tables.MFA().TOTP(ctx, tenant, user)
	if err != nil {
		return Tokens{}, err
	}
	if !found || !st.Enabled {
		return fail()
	}
	var consume func(context.Context, TxTables) error
	if code != "" {
		if h.vault == nil {
			return Tokens{}, ErrNoVault
		}
		secret, err := h.vault.Open(st.Sealed, totpBinding(user))
		if err != nil {
			return Tokens{}, err
		}
		step, ok := auth.VerifyTOTP(secret, code, h.now(), st.LastStep)
		if !ok {
			return fail()
		}
		consume = func(ctx context.Context, tx TxTables) error {
			ok, err := tx.MFA().ConsumeStep(ctx, user, step)
			if err == nil && !ok {
				return errReplay
			}
			return err
		}
	} else {
		// A recovery code is spent, and recorded on the user's stream,
		// before the session opens: a failure after leaves it spent,
		// never reusable.
		left, err := h.tables.MFA().RemainingRecoveryCodes(ctx, tenant, user)
		if err != nil {
			return Tokens{}, err
		}
		errUnknown := errors.New("not an unused recovery code")
		_, err = h.commit(ctx, a, Options{}, change{tenant: tenant, stream: userStream(user), anyVersion: true,
			events: []domain.Event{&domain.UserRecoveryCodeUsed{Remaining: max(left-1, 0)}},
			side: func(ctx context.Context, tx TxTables) error {
				_, ok, err := tx.MFA().ConsumeRecoveryCode(ctx, user, auth.HashRecoveryCode(recoveryCode))
				if err == nil && !ok {
					return errUnknown
				}
				return err
			}})
		if errors.Is(err, errUnknown) {
			return fail()
		}
		if err != nil {
			return Tokens{}, err
		}
	}
	t, err := h.openSession(ctx, a, cred, sessionOptions{side: consume})
	if errors.Is(err, errReplay) {
		return fail()
	}
	if err != nil {
		return Tokens{}, err
	}
	if err := h.sessions.AccountThrottle.Success(ctx, acctKey); err != nil {
		return Tokens{}, fmt.Errorf("%w: %w", ErrThrottleUnavailable, err)
	}
	return t, nil
}
