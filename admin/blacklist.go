package admin

import (
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/flashgate/flashgate/internal/edge"
)

// blacklist is the ban list's admin API (contract §9): bans by user or IP,
// kept in Redis and applied by every gateway within a second.
type blacklist struct {
	s    *Server
	bans *edge.BanStore
}

// mountBlacklist serves the ban list of the store's Redis, under its prefix.
func (s *Server) mountBlacklist() {
	if s.store == nil {
		return
	}
	b := &blacklist{s: s, bans: edge.NewBanStore(s.store.Client(), s.store.Prefix())}
	s.mux.HandleFunc("POST /admin/v1/blacklist", b.add)
	s.mux.HandleFunc("DELETE /admin/v1/blacklist", b.lift)
	s.mux.HandleFunc("GET /admin/v1/blacklist", b.list)
}

// banBody is the body of POST and DELETE: exactly one of user_id and ip;
// ttl and reason only count for POST.
type banBody struct {
	UserID *int64  `json:"user_id"`
	IP     *string `json:"ip"`
	TTL    *string `json:"ttl"`
	Reason string  `json:"reason"`
}

// decodeBan reads and checks a ban body. Errors name the field: 400 for a
// body that is not JSON or a field of the wrong type, 422 for a value that
// is not allowed.
func decodeBan(r *http.Request) (edge.Ban, error) {
	var body banBody
	if err := DecodeJSON(r, &body); err != nil {
		return edge.Ban{}, err
	}
	var b edge.Ban
	switch {
	case body.UserID != nil && body.IP != nil:
		return b, invalid(422, "user_id, ip: give one of them, not both")
	case body.UserID == nil && body.IP == nil:
		return b, invalid(422, "user_id, ip: give one of them")
	case body.UserID != nil:
		if *body.UserID <= 0 {
			return b, invalid(422, "user_id: must be a positive integer")
		}
		b.UserID = *body.UserID
	default:
		addr, err := netip.ParseAddr(strings.TrimSpace(*body.IP))
		if err != nil {
			return b, invalid(422, "ip: must be an IPv4 or IPv6 address like 203.0.113.9")
		}
		b.IP = addr.Unmap().WithZone("").String()
	}
	if body.TTL != nil && *body.TTL != "" {
		ttl, err := time.ParseDuration(*body.TTL)
		if err != nil || ttl < 0 {
			return b, invalid(422, "ttl: must be a duration like 10m or 24h (omit it for a ban without end)")
		}
		b.TTL = ttl
	}
	if len(body.Reason) > 200 {
		return b, invalid(422, "reason: at most 200 bytes")
	}
	b.Reason = body.Reason
	return b, nil
}

// add is POST /admin/v1/blacklist.
func (b *blacklist) add(w http.ResponseWriter, r *http.Request) {
	ban, err := decodeBan(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if ban.Reason == "" {
		ban.Reason = "admin"
	}
	if err := b.bans.Ban(r.Context(), ban); err != nil {
		b.s.fail(w, "ban", err)
		return
	}
	b.s.log.Info("banned", "user_id", ban.UserID, "ip", ban.IP, "ttl", ban.TTL, "reason", ban.Reason)
	WriteJSON(w, 200, map[string]string{"code": "ok"})
}

// lift is DELETE /admin/v1/blacklist. Lifting a ban that does not exist is
// not an error: the user or IP is not banned afterwards either way.
func (b *blacklist) lift(w http.ResponseWriter, r *http.Request) {
	ban, err := decodeBan(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if err := b.bans.Unban(r.Context(), ban); err != nil {
		b.s.fail(w, "lift ban", err)
		return
	}
	b.s.log.Info("ban lifted", "user_id", ban.UserID, "ip", ban.IP)
	WriteJSON(w, 200, map[string]string{"code": "ok"})
}

// banOut is one ban as GET /admin/v1/blacklist shows it; expires_at is
// null for a ban without end.
type banOut struct {
	UserID    int64      `json:"user_id,omitempty"`
	IP        string     `json:"ip,omitempty"`
	ExpiresAt *time.Time `json:"expires_at"`
	Reason    string     `json:"reason"`
}

// list is GET /admin/v1/blacklist: the bans in force, users then IPs.
func (b *blacklist) list(w http.ResponseWriter, r *http.Request) {
	bans, err := b.bans.List(r.Context())
	if err != nil {
		b.s.fail(w, "list bans", err)
		return
	}
	out := make([]banOut, 0, len(bans))
	for _, ban := range bans {
		o := banOut{UserID: ban.UserID, IP: ban.IP, Reason: ban.Reason}
		if !ban.ExpiresAt.IsZero() {
			t := ban.ExpiresAt.UTC()
			o.ExpiresAt = &t
		}
		out = append(out, o)
	}
	WriteJSON(w, 200, map[string]any{"code": "ok", "bans": out})
}
