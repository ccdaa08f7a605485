package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/projections"
)

// Backup schedules (API.md "Snapshots and backups"): a schedule's
// retention deletes backups, so changing schedules takes vm:delete.
func (srv *server) mountScheduleRoutes(r chi.Router) {
	r.With(srv.require(auth.PermVMDelete)).Post("/v1/backup-schedules", srv.createSchedule)
	r.With(srv.require(auth.PermVMRead)).Get("/v1/backup-schedules", srv.listSchedules)
	r.With(srv.require(auth.PermVMRead)).Get("/v1/backup-schedules/{id}", srv.getSchedule)
	r.With(srv.require(auth.PermVMDelete)).Patch("/v1/backup-schedules/{id}", srv.updateSchedule)
	r.With(srv.require(auth.PermVMDelete)).Delete("/v1/backup-schedules/{id}", srv.deleteSchedule)
}

type retentionBody struct {
	KeepLast    int `json:"keep_last,omitempty"`
	KeepHourly  int `json:"keep_hourly,omitempty"`
	KeepDaily   int `json:"keep_daily,omitempty"`
	KeepWeekly  int `json:"keep_weekly,omitempty"`
	KeepMonthly int `json:"keep_monthly,omitempty"`
	KeepYearly  int `json:"keep_yearly,omitempty"`
}

func (r retentionBody) toDomain() domain.Retention {
	return domain.Retention{KeepLast: r.KeepLast, KeepHourly: r.KeepHourly, KeepDaily: r.KeepDaily, KeepWeekly: r.KeepWeekly,
		KeepMonthly: r.KeepMonthly, KeepYearly: r.KeepYearly}
}

type scheduleRequest struct {
	Name      string         `json:"name"`
	VMIDs     []string       `json:"vm_ids,omitempty"`
	All       bool           `json:"all,omitempty"`
	Calendar  string         `json:"calendar"`
	Mode      string         `json:"mode,omitempty"`
	Retention *retentionBody `json:"retention,omitempty"`
	Enabled   *bool          `json:"enabled,omitempty"`
}

type schedulePatch struct {
	Name      *string        `json:"name,omitempty"`
	VMIDs     *[]string      `json:"vm_ids,omitempty"`
	All       *bool          `json:"all,omitempty"`
	Calendar  *string        `json:"calendar,omitempty"`
	Mode      *string        `json:"mode,omitempty"`
	Retention *retentionBody `json:"retention,omitempty"`
	Enabled   *bool          `json:"enabled,omitempty"`
}

type scheduleResponse struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	VMIDs     []string      `json:"vm_ids"`
	All       bool          `json:"all"`
	Calendar  string        `json:"calendar"`
	Mode      string        `json:"mode"`
	Retention retentionBody `json:"retention"`
	Enabled   bool          `json:"enabled"`
	NextRunAt *time.Time    `json:"next_run_at"`
	LastRunAt *time.Time    `json:"last_run_at"`
	Version   int64         `json:"version"`
	CreatedAt time.Time     `json:"created_at"`
}

func toScheduleResponse(s projections.BackupScheduleView) scheduleResponse {
	c := s.Config
	out := scheduleResponse{ID: s.ID.String(), Name: c.Name, VMIDs: []string{}, All: c.All, Calendar: c.Calendar, Mode: c.Mode,
		Retention: retentionBody{KeepLast: c.Retention.KeepLast, KeepHourly: c.Retention.KeepHourly, KeepDaily: c.Retention.KeepDaily,
			KeepWeekly: c.Retention.KeepWeekly, KeepMonthly: c.Retention.KeepMonthly, KeepYearly: c.Retention.KeepYearly},
		Enabled: c.Enabled, NextRunAt: utcOrNil(s.NextRunAt), LastRunAt: utcOrNil(s.LastRunAt), Version: s.Version, CreatedAt: s.CreatedAt.UTC()}
	for _, id := range c.VMIDs {
		out.VMIDs = append(out.VMIDs, id.String())
	}
	return out
}

func utcOrNil(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func scheduleLocation(res commands.Result) string { return "/v1/backup-schedules/" + res.ID.String() }

func (srv *server) createSchedule(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	var req scheduleRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	ids, err := parseVMIDs(req.VMIDs)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	c := domain.BackupScheduleConfig{Name: req.Name, VMIDs: ids, All: req.All, Calendar: req.Calendar, Mode: req.Mode, Enabled: true}
	if req.Retention != nil {
		c.Retention = req.Retention.toDomain()
	}
	if req.Enabled != nil {
		c.Enabled = *req.Enabled
	}
	runCommand(w, r, req, scheduleLocation, func(o commands.Options) (commands.Result, error) {
		return srv.commands.CreateBackupSchedule(r.Context(), actorOf(r), o, p.TenantID, c)
	})
}

func (srv *server) listSchedules(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	page, ok := srv.listPage(w, r, projections.BackupSchedules{}.Name())
	if !ok {
		return
	}
	list, next, err := projections.ListBackupSchedules(r.Context(), srv.pool, p.TenantID, page)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]scheduleResponse, len(list))
	for i, s := range list {
		out[i] = toScheduleResponse(s)
	}
	writeListWithCursor(w, r, out, next)
}

func (srv *server) getSchedule(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	id, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	if err := srv.awaitConsistency(w, r, projections.BackupSchedules{}.Name()); err != nil {
		WriteError(w, r, err)
		return
	}
	s, err := projections.GetBackupSchedule(r.Context(), srv.pool, p.TenantID, id)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toScheduleResponse(s))
}

func (srv *server) updateSchedule(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	runIDBodyCommand(w, r, func(o commands.Options, id uuid.UUID, req schedulePatch) (commands.Result, error) {
		var ids []uuid.UUID
		if req.VMIDs != nil {
			var err error
			if ids, err = parseVMIDs(*req.VMIDs); err != nil {
				return commands.Result{}, err
			}
		}
		return srv.commands.UpdateBackupSchedule(r.Context(), actorOf(r), o, p.TenantID, id, func(c *domain.BackupScheduleConfig) {
			if req.Name != nil {
				c.Name = *req.Name
			}
			if req.VMIDs != nil {
				c.VMIDs, c.All = ids, false
			}
			if req.All != nil {
				c.All = *req.All
				if c.All {
					c.VMIDs = nil
				}
			}
			if req.Calendar != nil {
				c.Calendar = *req.Calendar
			}
			if req.Mode != nil {
				c.Mode = *req.Mode
			}
			if req.Retention != nil {
				c.Retention = req.Retention.toDomain()
			}
			if req.Enabled != nil {
				c.Enabled = *req.Enabled
			}
		})
	})
}

func (srv *server) deleteSchedule(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	runIDCommand(w, r, func(o commands.Options, id uuid.UUID) (commands.Result, error) {
		return srv.commands.DeleteBackupSchedule(r.Context(), actorOf(r), o, p.TenantID, id)
	})
}

// parseVMIDs reads a schedule's VM ids; a malformed one is a 400 naming
// vm_ids.
func parseVMIDs(in []string) ([]uuid.UUID, error) {
	out := make([]uuid.UUID, 0, len(in))
	for _, s := range in {
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, BadRequest("vm_ids is invalid", map[string]string{"vm_ids": "must be VM ids (UUIDs)"})
		}
		out = append(out, id)
	}
	return out, nil
}
