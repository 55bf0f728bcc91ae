package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/mysql"
)

// mountSale serves the operations of a running sale (contract §11).
func (s *Server) mountSale() {
	s.mux.HandleFunc("GET /admin/v1/activities", s.listActivities)
	s.mux.HandleFunc("PATCH /admin/v1/activities/{id}", s.patchActivity)
	s.mux.HandleFunc("DELETE /admin/v1/activities/{id}", s.deleteActivity)
	s.mux.HandleFunc("POST /admin/v1/activities/{id}/publish", s.publish)
	s.mux.HandleFunc("DELETE /admin/v1/activities/{id}/publish", s.unschedule)
	s.mux.HandleFunc("POST /admin/v1/activities/{id}/close", s.closeActivity)
	s.mux.HandleFunc("PATCH /admin/v1/items/{id}", s.patchItem)
	s.mux.HandleFunc("POST /admin/v1/items/{id}/stock", s.adjustStock)
	s.mux.HandleFunc("GET /admin/v1/items/{id}/reconcile", s.reconcile)
}

// activityOut is an activity as the admin API shows it.
type activityOut struct {
	ID          int64                    `json:"id"`
	Name        string                   `json:"name"`
	StartAt     time.Time                `json:"start_at"`
	EndAt       time.Time                `json:"end_at"`
	PublishAt   *time.Time               `json:"publish_at"`
	Published   bool                     `json:"published"`
	PublishedAt *time.Time               `json:"published_at"`
	Status      flashgate.ActivityStatus `json:"status"`
	Items       []itemOut                `json:"items,omitempty"`
}

func (s *Server) activityOut(a *flashgate.Activity, withItems bool) activityOut {
	out := activityOut{ID: a.ID, Name: a.Name, StartAt: a.StartAt, EndAt: a.EndAt, PublishAt: a.PublishAt,
		Published: a.PublishedAt != nil, PublishedAt: a.PublishedAt, Status: a.StatusAt(s.now())}
	if withItems {
		out.Items = make([]itemOut, 0, len(a.Items))
		for _, it := range a.Items {
			out.Items = append(out.Items, newItemOut(&it))
		}
	}
	return out
}

func (s *Server) listActivities(w http.ResponseWriter, r *http.Request) {
	var status flashgate.ActivityStatus
	if v := r.URL.Query().Get("status"); v != "" {
		st, ok := flashgate.ParseActivityStatus(v)
		if !ok {
			WriteError(w, invalid(400, "status: must be one of draft, scheduled, upcoming, live, ended, archived"))
			return
		}
		status = st
	}
	list, err := s.db.ListActivities(r.Context(), status, s.now(), 1000)
	if err != nil {
		s.fail(w, "list activities", err)
		return
	}
	out := make([]activityOut, len(list))
	for i := range list {
		out[i] = s.activityOut(&list[i], false)
	}
	WriteJSON(w, 200, map[string]any{"code": "ok", "activities": out})
}

func (s *Server) patchActivity(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name    *string `json:"name"`
		StartAt *string `json:"start_at"`
		EndAt   *string `json:"end_at"`
	}
	id, ok := pathIDBody(w, r, &body)
	if !ok {
		return
	}
	var p mysql.ActivityPatch
	if body.Name != nil {
		if err := checkName(*body.Name); err != nil {
			WriteError(w, err)
			return
		}
		p.Name = body.Name
	}
	for _, f := range []struct {
		name string
		in   *string
		out  **time.Time
	}{{"start_at", body.StartAt, &p.StartAt}, {"end_at", body.EndAt, &p.EndAt}} {
		if f.in == nil {
			continue
		}
		t, err := parseTime(f.name, *f.in)
		if err != nil {
			WriteError(w, err)
			return
		}
		*f.out = &t
	}
	if p.Name == nil && p.StartAt == nil && p.EndAt == nil {
		WriteError(w, invalid(422, "body: give at least one of name, start_at, end_at"))
		return
	}
	a, err := s.ops.Update(r.Context(), id, p)
	if err != nil {
		s.fail(w, "update activity", err)
		return
	}
	WriteJSON(w, 200, map[string]any{"code": "ok", "activity": s.activityOut(a, true)})
}

func (s *Server) deleteActivity(w http.ResponseWriter, r *http.Request) {
	id, ok := pathIDBody(w, r, nil)
	if !ok {
		return
	}
	if err := s.db.DeleteActivity(r.Context(), id, s.now()); err != nil {
		s.fail(w, "delete activity", err)
		return
	}
	WriteJSON(w, 200, map[string]any{"code": "ok", "id": id})
}

// publish publishes an activity now, or schedules it: with an "at" after
// now the fleet publishes it then (contract §11).
func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	id, ok := pathIDBody(w, r, nil)
	if !ok {
		return
	}
	var body struct {
		At *string `json:"at"`
	}
	if r.ContentLength != 0 {
		raw, err := readBody(r)
		if err != nil {
			WriteError(w, err)
			return
		}
		if strings.TrimSpace(string(raw)) != "" {
			if err := decodeBytes(raw, &body); err != nil {
				WriteError(w, err)
				return
			}
		}
	}
	if body.At != nil {
		at, err := parseTime("at", *body.At)
		if err != nil {
			WriteError(w, err)
			return
		}
		if at.After(s.now()) {
			a, err := s.db.Schedule(r.Context(), id, at)
			if err != nil {
				s.fail(w, "schedule publish", err)
				return
			}
			WriteJSON(w, 202, map[string]any{"code": "ok", "id": id, "publish_at": a.PublishAt, "status": flashgate.StatusScheduled})
			return
		}
	}
	a, err := s.ops.Publish(r.Context(), id)
	if err != nil {
		s.fail(w, "publish", err)
		return
	}
	WriteJSON(w, 200, map[string]any{"code": "ok", "id": id, "published_at": a.PublishedAt})
}

func (s *Server) unschedule(w http.ResponseWriter, r *http.Request) {
	id, ok := pathIDBody(w, r, nil)
	if !ok {
		return
	}
	if err := s.db.Unschedule(r.Context(), id, s.now()); err != nil {
		s.fail(w, "cancel scheduled publish", err)
		return
	}
	WriteJSON(w, 200, map[string]any{"code": "ok", "id": id, "status": flashgate.StatusDraft})
}

func (s *Server) closeActivity(w http.ResponseWriter, r *http.Request) {
	id, ok := pathIDBody(w, r, nil)
	if !ok {
		return
	}
	a, err := s.ops.Close(r.Context(), id)
	if err != nil {
		s.fail(w, "close activity", err)
		return
	}
	s.log.Info("closed activity", "activity", id)
	WriteJSON(w, 200, map[string]any{"code": "ok", "activity": s.activityOut(a, false)})
}

func (s *Server) patchItem(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name           *string         `json:"name"`
		Price          json.RawMessage `json:"price"`
		Points         *int64          `json:"points"`
		Shards         *int            `json:"shards"`
		RequirePath    *bool           `json:"require_path"`
		RequireCaptcha *bool           `json:"require_captcha"`
	}
	id, ok := pathIDBody(w, r, &body)
	if !ok {
		return
	}
	p := mysql.ItemPatch{Name: body.Name, Points: body.Points, Shards: body.Shards, RequirePath: body.RequirePath, RequireCaptcha: body.RequireCaptcha}
	if p.Name != nil {
		if err := checkName(*p.Name); err != nil {
			WriteError(w, err)
			return
		}
	}
	if len(body.Price) > 0 && string(body.Price) != "null" {
		m, err := flashgate.ParseMoney(strings.Trim(string(body.Price), `"`))
		if err != nil {
			WriteError(w, invalid(422, "price: %v", err))
			return
		}
		p.Price = &m
	}
	if p.Points != nil && *p.Points < 0 {
		WriteError(w, invalid(422, "points: must not be negative"))
		return
	}
	if p.Shards != nil && (*p.Shards < 1 || *p.Shards > 256) {
		WriteError(w, invalid(422, "shards: must be from 1 to 256"))
		return
	}
	if p == (mysql.ItemPatch{}) {
		WriteError(w, invalid(422, "body: give at least one of name, price, points, shards, require_path, require_captcha"))
		return
	}
	it, err := s.db.UpdateItem(r.Context(), id, p)
	if err != nil {
		s.fail(w, "update item", err)
		return
	}
	WriteJSON(w, 200, map[string]any{"code": "ok", "item": newItemOut(it)})
}

func (s *Server) adjustStock(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Delta *int64 `json:"delta"`
	}
	id, ok := pathIDBody(w, r, &body)
	if !ok {
		return
	}
	switch {
	case body.Delta == nil:
		WriteError(w, invalid(422, "delta: required (a non-zero integer)"))
		return
	case *body.Delta == 0:
		WriteError(w, invalid(422, "delta: must not be 0"))
		return
	case *body.Delta > 1_000_000_000 || *body.Delta < -1_000_000_000:
		WriteError(w, invalid(422, "delta: must be from -1000000000 to 1000000000"))
		return
	}
	res, err := s.ops.Adjust(r.Context(), id, *body.Delta)
	if err != nil {
		s.fail(w, "adjust stock", err)
		return
	}
	s.log.Info("adjusted stock", "item", id, "delta", *body.Delta, "stock", res.Stock)
	WriteJSON(w, 200, map[string]any{"code": "ok", "stock": res.Stock, "remaining": res.Remaining})
}

func (s *Server) reconcile(w http.ResponseWriter, r *http.Request) {
	id, ok := pathIDBody(w, r, nil)
	if !ok {
		return
	}
	n, err := s.ops.Numbers(r.Context(), id)
	if err != nil {
		s.fail(w, "reconcile", err)
		return
	}
	WriteJSON(w, 200, map[string]any{"code": "ok", "reconcile": map[string]int64{
		"stock": n.Stock, "remaining": n.Remaining, "reserved": n.Reserved, "live_orders": n.Live(), "drift": n.Drift(),
	}})
}
