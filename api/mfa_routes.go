package api

import (
	"net/http"
	"strings"

	"github.com/accountdb/accountdb/commands"
)

// Two-factor (docs/SECURITY.md, "Two-factor"): a user's own TOTP, managed
// with a session (never an API token), the sign-in's second step, and the
// tenant's requirement.

type mfaRequest struct {
	MFAToken     string `json:"mfa_token"`
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
}

// completeMFA is POST /v1/auth/mfa: a wrong, reused or out-of-window code
// is the same 401 as a wrong password.
func (srv *server) completeMFA(w http.ResponseWriter, r *http.Request) {
	var req mfaRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	if req.MFAToken == "" {
		WriteProblem(w, r, BadRequest("mfa_token is required", map[string]string{"mfa_token": "required"}))
		return
	}
	t, err := srv.commands.CompleteMFA(r.Context(), requestMetadata(r), req.MFAToken, strings.TrimSpace(req.Code), req.RecoveryCode)
	if err != nil {
		authError(w, r, err)
		return
	}
	writeTokens(w, t)
}

type totpEnrolmentResponse struct {
	Secret     string `json:"secret"`
	OtpauthURI string `json:"otpauth_uri"`
}

type codeRequest struct {
	Code string `json:"code"`
}

type recoveryCodesResponse struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

type totpStatusResponse struct {
	Enabled                bool `json:"enabled"`
	Pending                bool `json:"pending"`
	RecoveryCodesRemaining int  `json:"recovery_codes_remaining"`
	Required               bool `json:"required"`
}

func (srv *server) startTOTP(w http.ResponseWriter, r *http.Request) {
	if err := decodeEmptyBody(w, r); err != nil {
		WriteError(w, r, err)
		return
	}
	e, err := srv.commands.StartTOTP(r.Context(), actorOf(r))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, totpEnrolmentResponse{Secret: e.Secret, OtpauthURI: e.URI})
}

func (srv *server) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	var req codeRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	codes, err := srv.commands.ConfirmTOTP(r.Context(), actorOf(r), strings.TrimSpace(req.Code))
	if err != nil {
		authError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, recoveryCodesResponse{RecoveryCodes: codes})
}

func (srv *server) disableTOTP(w http.ResponseWriter, r *http.Request) {
	var req codeRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	o, err := commandOptions(r, req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	res, err := srv.commands.DisableTOTP(r.Context(), actorOf(r), o, strings.TrimSpace(req.Code))
	if err != nil {
		authError(w, r, err)
		return
	}
	writeAccepted(w, res, "")
}

func (srv *server) totpStatus(w http.ResponseWriter, r *http.Request) {
	st, err := srv.commands.TOTPStatusOf(r.Context(), actorOf(r))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, totpStatusResponse{Enabled: st.Enabled, Pending: st.Pending,
		RecoveryCodesRemaining: st.RecoveryCodesRemaining, Required: st.Required})
}

type mfaRequirement struct {
	Required bool `json:"required"`
}

func (srv *server) getMFARequirement(w http.ResponseWriter, r *http.Request) {
	tenant, ok := targetTenant(w, r)
	if !ok {
		return
	}
	required, err := srv.commands.RequiresMFA(r.Context(), tenant)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, mfaRequirement{Required: required})
}

func (srv *server) setMFARequirement(w http.ResponseWriter, r *http.Request) {
	tenant, ok := targetTenant(w, r)
	if !ok {
		return
	}
	var req mfaRequirement
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, req, nil, func(o commands.Options) (commands.Result, error) {
		return srv.commands.SetMFARequirement(r.Context(), actorOf(r), o, tenant, req.Required)
	})
}

// enrolmentRoutes are all an enrolment-only session reaches (the tenant
// requires two-factor and its user has none yet).
var enrolmentRoutes = map[string]bool{
	"GET /v1/users/me": true, "GET /v1/users/me/totp": true, "POST /v1/users/me/totp": true,
	"POST /v1/users/me/totp/confirm": true, "POST /v1/auth/logout": true,
}
