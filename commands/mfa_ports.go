package commands

import (
	"context"

	"github.com/google/uuid"
)

// TOTPState is a user's TOTP row: the sealed secret, whether it was
// confirmed, and the last time step a code was accepted for.
type TOTPState struct {
	Sealed   string
	Enabled  bool
	LastStep int64
}

// MFAStore reads two-factor state and writes the one row that changes with
// no event (an enrolment awaiting its first code).
type MFAStore interface {
	TOTP(ctx context.Context, tenant, user uuid.UUID) (TOTPState, bool, error)
	// RemainingRecoveryCodes counts user's unused recovery codes.
	RemainingRecoveryCodes(ctx context.Context, tenant, user uuid.UUID) (int, error)
	RequireMFA(ctx context.Context, tenant uuid.UUID) (bool, error)
	// SetPendingTOTP records (or replaces) an enrolment awaiting its
	// first code; false, with nothing written, when TOTP is enabled.
	SetPendingTOTP(ctx context.Context, tenant, user uuid.UUID, sealed string) (bool, error)
}

// MFAWriter writes two-factor state inside AppendWith.
type MFAWriter interface {
	// EnableTOTP confirms a pending enrolment at step and stores the
	// recovery codes' hashes; false when there was no pending one.
	EnableTOTP(ctx context.Context, user uuid.UUID, step int64, recoveryHashes [][]byte) (bool, error)
	DisableTOTP(ctx context.Context, user uuid.UUID) error
	// ConsumeStep records step as the last one accepted; false when a code
	// of that step or a later one was accepted already (a replay).
	ConsumeStep(ctx context.Context, user uuid.UUID, step int64) (bool, error)
	// ConsumeRecoveryCode marks the code of that hash used and answers how
	// many remain; false when it is not an unused code of user.
	ConsumeRecoveryCode(ctx context.Context, user uuid.UUID, hash []byte) (remaining int, ok bool, err error)
	SetRequireMFA(ctx context.Context, tenant uuid.UUID, required bool) error
	// LiftEnrolmentOnly opens user's enrolment-only sessions to everything
	// their roles allow, once two-factor is on.
	LiftEnrolmentOnly(ctx context.Context, user uuid.UUID) error
}
