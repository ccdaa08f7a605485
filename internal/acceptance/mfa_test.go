package acceptance_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
)

type mfaLogin struct {
	AccessToken           string `json:"access_token"`
	RefreshToken          string `json:"refresh_token"`
	MFARequired           bool   `json:"mfa_required"`
	MFAToken              string `json:"mfa_token"`
	MFAEnrollmentRequired bool   `json:"mfa_enrollment_required"`
}

func loginMFA(t *testing.T, s *stacktest.Stack, a stacktest.Account) mfaLogin {
	t.Helper()
	var out mfaLogin
	wantStatus(t, s.Do(t, "", http.MethodPost, "/v1/auth/login", map[string]string{"email": a.Email, "password": a.Password}, &out), http.StatusOK)
	return out
}

// enrolTOTP starts and confirms an enrolment with the code of the current
// step (answered, with the secret and the recovery codes). Each user then
// uses at most the next step's code, valid within TOTP's ±1 step window
// whatever the step boundary this test crosses.
func enrolTOTP(t *testing.T, s *stacktest.Stack, session string) (secret string, step int64, recovery []string) {
	t.Helper()
	var e struct {
		Secret     string `json:"secret"`
		OtpauthURI string `json:"otpauth_uri"`
	}
	wantStatus(t, s.Do(t, session, http.MethodPost, "/v1/users/me/totp", nil, &e), http.StatusOK)
	u, err := url.Parse(e.OtpauthURI)
	if err != nil || u.Scheme != "otpauth" || u.Query().Get("secret") != e.Secret || u.Query().Get("issuer") != "AccountDB" {
		t.Fatalf("otpauth uri %q", e.OtpauthURI)
	}
	step = auth.TOTPStep(time.Now())
	var c struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	wantStatus(t, s.Do(t, session, http.MethodPost, "/v1/users/me/totp/confirm", map[string]string{"code": totpCode(t, e.Secret, step)}, &c), http.StatusOK)
	if len(c.RecoveryCodes) != 10 {
		t.Fatalf("recovery codes %v", c.RecoveryCodes)
	}
	return e.Secret, step, c.RecoveryCodes
}

func totpCode(t *testing.T, secret string, step int64) string {
	t.Helper()
	c, err := auth.TOTPCode(secret, step)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mfaStep(t *testing.T, s *stacktest.Stack, mfaToken string, body map[string]string) stacktest.Response {
	t.Helper()
	body["mfa_token"] = mfaToken
	return s.Do(t, "", http.MethodPost, "/v1/auth/mfa", body, nil)
}

// TestTOTP covers issue 12's two-factor over HTTP: enrolment and its
// confirmation, sign-in in two steps, codes good once (a replay is the same
// 401 as a wrong code), recovery codes, disabling with a current code,
// failures counted by the sign-in throttle, the tenant's requirement, and
// no secret in any event.
func TestTOTP(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	tenant := s.Tenant(t, "mfa")
	adminAcct := s.User(t, tenant, auth.RoleTenantAdmin)
	admin := s.Login(t, adminAcct).AccessToken
	var allSecrets []string

	t.Run("sign-in in two steps; codes and recovery codes are good once", func(t *testing.T) {
		alice := s.User(t, tenant, auth.RoleOperator)
		session := s.Login(t, alice).AccessToken
		var st map[string]any
		wantStatus(t, s.Do(t, session, http.MethodGet, "/v1/users/me/totp", nil, &st), http.StatusOK)
		if st["enabled"] != false {
			t.Fatalf("status before %v", st)
		}
		secret, step, recovery := enrolTOTP(t, s, session)
		allSecrets = append(allSecrets, secret)
		allSecrets = append(allSecrets, recovery...)
		wantProblem(t, s.Do(t, session, http.MethodPost, "/v1/users/me/totp", nil, nil), http.StatusConflict, "conflict")

		l := loginMFA(t, s, alice)
		if !l.MFARequired || l.MFAToken == "" || l.AccessToken != "" {
			t.Fatalf("password step answered %+v", l)
		}
		// The MFA token is no access token, nor the reverse.
		wantProblem(t, s.Do(t, l.MFAToken, http.MethodGet, "/v1/users/me", nil, nil), http.StatusUnauthorized, "unauthenticated")
		wantProblem(t, mfaStep(t, s, session, map[string]string{"code": totpCode(t, secret, step+1)}), http.StatusUnauthorized, "unauthenticated")
		// A wrong code, and the confirmation's code again: the same 401.
		wrong := wantProblem(t, mfaStep(t, s, l.MFAToken, map[string]string{"code": "000000"}), http.StatusUnauthorized, "unauthenticated")
		replay := wantProblem(t, mfaStep(t, s, l.MFAToken, map[string]string{"code": totpCode(t, secret, step)}), http.StatusUnauthorized, "unauthenticated")
		if wrong["detail"] != replay["detail"] || wrong["title"] != replay["title"] {
			t.Fatalf("a replay reads unlike a wrong code: %v / %v", wrong, replay)
		}
		wantProblem(t, mfaStep(t, s, l.MFAToken, map[string]string{"code": "1", "recovery_code": recovery[0]}), http.StatusBadRequest, "validation_failed")

		var tok mfaLogin
		r := mfaStep(t, s, l.MFAToken, map[string]string{"code": totpCode(t, secret, step+1)})
		wantStatus(t, r, http.StatusOK)
		if err := decodeBody(r, &tok); err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
			t.Fatalf("second step answered %s", r.Body)
		}
		wantStatus(t, s.Do(t, tok.AccessToken, http.MethodGet, "/v1/vms", nil, nil), http.StatusOK)

		// The same code in another sign-in: refused.
		l2 := loginMFA(t, s, alice)
		wantProblem(t, mfaStep(t, s, l2.MFAToken, map[string]string{"code": totpCode(t, secret, step+1)}), http.StatusUnauthorized, "unauthenticated")
		// A recovery code works once.
		wantStatus(t, mfaStep(t, s, l2.MFAToken, map[string]string{"recovery_code": strings.ToUpper(recovery[3])}), http.StatusOK)
		l3 := loginMFA(t, s, alice)
		wantProblem(t, mfaStep(t, s, l3.MFAToken, map[string]string{"recovery_code": recovery[3]}), http.StatusUnauthorized, "unauthenticated")
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'user_recovery_code_used' AND stream_id = $1 AND (data->>'remaining')::int = 9`,
			"user-"+alice.ID.String()); n != 1 {
			t.Fatalf("user_recovery_code_used events: %d", n)
		}
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'login_failed' AND data->>'reason' = 'bad_mfa_code' AND actor_id = $1`, alice.ID); n != 4 {
			t.Fatalf("login_failed bad_mfa_code: %d, want 4", n)
		}
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'user_totp_enabled' AND stream_id = $1`, "user-"+alice.ID.String()); n != 1 {
			t.Fatalf("user_totp_enabled: %d", n)
		}
	})

	t.Run("disable with a current code", func(t *testing.T) {
		bob := s.User(t, tenant, auth.RoleViewer)
		session := s.Login(t, bob).AccessToken
		wantProblem(t, s.Do(t, session, http.MethodDelete, "/v1/users/me/totp", map[string]string{"code": "123456"}, nil), http.StatusUnprocessableEntity, "invalid_state")
		secret, step, recovery := enrolTOTP(t, s, session)
		allSecrets = append(allSecrets, secret)
		allSecrets = append(allSecrets, recovery...)
		// An API token cannot touch two-factor.
		var ct createdToken
		wantStatus(t, s.Do(t, session, http.MethodPost, "/v1/users/me/tokens", map[string]any{"name": "t", "permissions": []string{"vm:read"}}, &ct), http.StatusCreated)
		wantProblem(t, s.Do(t, ct.Token, http.MethodDelete, "/v1/users/me/totp", map[string]string{"code": totpCode(t, secret, step+1)}, nil), http.StatusForbidden, "forbidden")
		p := wantProblem(t, s.Do(t, session, http.MethodDelete, "/v1/users/me/totp", map[string]string{"code": totpCode(t, secret, step)}, nil), http.StatusBadRequest, "validation_failed")
		if _, ok := fieldErrors(t, p)["code"]; !ok {
			t.Fatalf("code not named: %v", p)
		}
		wantStatus(t, s.Do(t, session, http.MethodDelete, "/v1/users/me/totp", map[string]string{"code": totpCode(t, secret, step+1)}, nil), http.StatusAccepted)
		if l := loginMFA(t, s, bob); l.MFARequired || l.AccessToken == "" {
			t.Fatalf("sign-in after disabling: %+v", l)
		}
		if n := d.count(t, `SELECT count(*) FROM user_totp WHERE user_id = $1`, bob.ID) + d.count(t, `SELECT count(*) FROM user_recovery_codes WHERE user_id = $1`, bob.ID); n != 0 {
			t.Fatalf("rows left after disabling: %d", n)
		}
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'user_totp_disabled' AND stream_id = $1`, "user-"+bob.ID.String()); n != 1 {
			t.Fatalf("user_totp_disabled: %d", n)
		}
	})

	t.Run("wrong codes count in the sign-in throttle", func(t *testing.T) {
		carl := s.User(t, tenant, auth.RoleViewer)
		secret, step, _ := enrolTOTP(t, s, s.Login(t, carl).AccessToken)
		l := loginMFA(t, s, carl)
		for range 5 {
			wantProblem(t, mfaStep(t, s, l.MFAToken, map[string]string{"code": "999999"}), http.StatusUnauthorized, "unauthenticated")
		}
		r := mfaStep(t, s, l.MFAToken, map[string]string{"code": totpCode(t, secret, step+1)})
		wantProblem(t, r, http.StatusTooManyRequests, "rate_limited")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
		wantProblem(t, s.Do(t, "", http.MethodPost, "/v1/auth/login", map[string]string{"email": carl.Email, "password": carl.Password}, nil),
			http.StatusTooManyRequests, "rate_limited")
	})

	t.Run("a tenant that requires two-factor lets users without it only enrol", func(t *testing.T) {
		dora := s.User(t, tenant, auth.RoleVMAdmin)
		viewer := s.Login(t, s.User(t, tenant, auth.RoleViewer)).AccessToken
		wantProblem(t, s.Do(t, viewer, http.MethodPut, "/v1/mfa-requirement", map[string]bool{"required": true}, nil), http.StatusForbidden, "forbidden")
		wantStatus(t, s.Do(t, admin, http.MethodPut, "/v1/mfa-requirement", map[string]bool{"required": true}, nil), http.StatusAccepted)
		var req map[string]any
		wantStatus(t, s.Do(t, admin, http.MethodGet, "/v1/mfa-requirement", nil, &req), http.StatusOK)
		if req["required"] != true {
			t.Fatalf("requirement %v", req)
		}
		l := loginMFA(t, s, dora)
		if !l.MFAEnrollmentRequired || l.AccessToken == "" {
			t.Fatalf("sign-in of a user to enrol: %+v", l)
		}
		wantProblem(t, s.Do(t, l.AccessToken, http.MethodGet, "/v1/vms", nil, nil), http.StatusForbidden, "mfa_enrollment_required")
		wantStatus(t, s.Do(t, l.AccessToken, http.MethodGet, "/v1/users/me", nil, nil), http.StatusOK)
		secret, _, recovery := enrolTOTP(t, s, l.AccessToken)
		allSecrets = append(allSecrets, secret)
		allSecrets = append(allSecrets, recovery...)
		wantStatus(t, s.Do(t, l.AccessToken, http.MethodGet, "/v1/vms", nil, nil), http.StatusOK)
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'tenant_mfa_requirement_changed' AND tenant_id = $1`, tenant); n != 1 {
			t.Fatalf("tenant_mfa_requirement_changed: %d", n)
		}
		wantStatus(t, s.Do(t, admin, http.MethodPut, "/v1/mfa-requirement", map[string]bool{"required": false}, nil), http.StatusAccepted)
	})

	t.Run("no event holds a TOTP secret or a recovery code", func(t *testing.T) {
		if len(allSecrets) < 20 {
			t.Fatalf("only %d secrets collected", len(allSecrets))
		}
		for _, sec := range allSecrets {
			for _, needle := range []string{sec, strings.ReplaceAll(sec, "-", "")} {
				if n := d.count(t, `SELECT count(*) FROM events WHERE data::text ILIKE '%' || $1 || '%' OR metadata::text ILIKE '%' || $1 || '%'`, needle); n != 0 {
					t.Fatalf("%d events hold a secret", n)
				}
			}
			if n := d.count(t, `SELECT count(*) FROM user_totp WHERE sealed_secret LIKE '%' || $1 || '%'`, sec); n != 0 {
				t.Fatal("a TOTP secret is stored in clear")
			}
		}
	})
}

func decodeBody(r stacktest.Response, out any) error { return json.Unmarshal(r.Body, out) }
