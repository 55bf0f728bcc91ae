// Package admin is flashgate's admin HTTP API (contract §6): activities,
// items, publishing (which preloads sharded stock into Redis) and item
// statistics, behind a bearer token, on a listener of its own.
package admin

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/logging"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/webasset"
	"github.com/flashgate/flashgate/sale"
)

// Server is the admin API.
type Server struct {
	db    *mysql.DB
	store *redis.Store
	token []byte
	log   *slog.Logger
	mux   *routeMux
	now   func() time.Time
	ops   *sale.Ops

	metrics http.Handler
	web     *webasset.Set

	// AccessLog, when set before Serve, gets a line per request
	// (FLASHGATE_ACCESS_LOG).
	AccessLog *slog.Logger
	// closing is set once Serve starts shutting down: /readyz fails.
	closing atomic.Bool
}

// New returns the admin API. reg is served on /metrics.
func New(db *mysql.DB, store *redis.Store, token string, log *slog.Logger, reg *prometheus.Registry) *Server {
	s := &Server{db: db, store: store, token: []byte(token), log: log, mux: new(routeMux), now: time.Now}
	s.ops = sale.New(db, store, log)
	s.mountSale()
	s.mux.HandleFunc("POST /admin/v1/activities", s.createActivity)
	s.mux.HandleFunc("GET /admin/v1/activities/{id}", s.getActivity)
	s.mux.HandleFunc("POST /admin/v1/activities/{id}/items", s.addItem)
	s.mux.HandleFunc("GET /admin/v1/items/{id}/stats", s.stats)
	s.mux.HandleFunc("GET /admin/v1/items/{id}/live", s.live)
	s.web = loadWeb()
	// The console's files hold no data and no secret: open, like the probes.
	for _, pattern := range []string{"GET /{$}", "GET /index.html", "GET /favicon.ico", "GET /static/{file...}"} {
		s.mux.Open(pattern, func(w http.ResponseWriter, r *http.Request) {
			if !s.page(w, r) {
				WriteError(w, flashgate.Errorf(flashgate.NotFound, "no such file"))
			}
		})
	}
	s.mountBlacklist()
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	if reg != nil {
		s.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
	// Open to probes and scrapers, without the token.
	s.mux.Open("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, 200, map[string]string{"code": "ok"})
	})
	s.mux.Open("GET /readyz", s.readyz)
	s.mux.Open("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if s.metrics == nil {
			WriteJSON(w, 200, map[string]string{"code": "ok"})
			return
		}
		s.metrics.ServeHTTP(w, r)
	})
	return s
}

// Handle mounts an extra admin handler (payments, blacklist) behind the
// admin token. pattern is a net/http ServeMux pattern.
func (s *Server) Handle(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

// ServeHTTP checks the admin token, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Handler finds the route; ServeHTTP, below, also sets its path values.
	h, pattern := s.mux.Handler(r)
	if s.mux.open[pattern] {
		s.mux.ServeHTTP(w, r)
		return
	}
	if !s.authorized(r) {
		WriteError(w, flashgate.Errorf(flashgate.Unauthorized, "missing or bad admin token"))
		return
	}
	if pattern == "" {
		noRoute(w, r, h)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// readyz answers 200 when MySQL and Redis, which every admin call needs,
// answer within 2s, and 503 naming the one that does not, or while
// shutting down. No token: probes carry none.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		WriteError(w, flashgate.Errorf(flashgate.Unavailable, "shutting down"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.db.PingContext(ctx); err != nil {
		WriteError(w, flashgate.Errorf(flashgate.Unavailable, "mysql unreachable"))
		return
	}
	if err := s.store.Ping(ctx); err != nil {
		WriteError(w, flashgate.Errorf(flashgate.Unavailable, "redis unreachable"))
		return
	}
	WriteJSON(w, 200, map[string]string{"code": "ok"})
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const p = "Bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(h[len(p):]), s.token) == 1
}

// Serve answers on ln until ctx is done, then drains.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var h http.Handler = s
	if s.AccessLog != nil {
		h = logging.AccessHTTP(s.AccessLog, s)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      120 * time.Second, // pprof profiles take 30s
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// Every admin process takes part in scheduled publishing (contract
	// §11: any admin or worker may publish).
	schedCtx, stop := context.WithCancel(ctx)
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		s.ops.RunScheduler(schedCtx)
	}()
	defer func() { stop(); <-schedDone }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.closing.Store(true)
	// Not sctx: the scheduler reads that until it has stopped.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"code":"internal","message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// WriteError is the one place where a domain error becomes an admin answer.
func WriteError(w http.ResponseWriter, err error) {
	code := flashgate.ErrorCode(err)
	status := flashgate.HTTPStatus(code)
	var e *flashgate.Error
	if errors.As(err, &e) && e.Status != 0 {
		status = e.Status
	}
	WriteJSON(w, status, map[string]string{"code": string(code), "message": flashgate.ErrorMessage(err)})
}

func invalid(status int, format string, args ...any) error {
	return &flashgate.Error{Code: flashgate.Invalid, Status: status, Message: fmt.Sprintf(format, args...)}
}

// DecodeJSON reads a JSON object body into v; errors name the field at
// fault and answer 400. A field v does not know is an error too: a typo in
// an admin request must not be silently ignored.
func DecodeJSON(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return invalid(400, "body: empty; a JSON object is required")
	}
	return decodeBytes(body, v)
}

// MaxBody is the largest admin request body, in bytes.
const MaxBody = 1 << 20

// readBody reads the body; over MaxBody it answers 413.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return nil, invalid(400, "body: %v", err)
	}
	if len(body) > MaxBody {
		return nil, invalid(http.StatusRequestEntityTooLarge, "body: larger than the limit of 1 MiB (%d bytes)", MaxBody)
	}
	return body, nil
}

func decodeBytes(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return invalid(400, "%s: unknown field", strings.Trim(f, `"`))
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return invalid(400, "%s: must be %s", te.Field, jsonKind(te.Type.Kind().String()))
		}
		return invalid(400, "body: malformed JSON: %v", err)
	}
	return nil
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "true or false"
	}
	return "a " + k
}

// PathID parses the {name} path value as a positive id.
func PathID(r *http.Request, name string) (int64, error) {
	v, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || v <= 0 {
		return 0, invalid(400, "%s: must be a positive integer", name)
	}
	return v, nil
}

func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, invalid(422, "%s: required (RFC 3339 time)", field)
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, invalid(422, "%s: must be an RFC 3339 time like 2026-11-21T10:00:00Z", field)
	}
	return t.UTC().Truncate(time.Millisecond), nil
}

func checkName(v string) error {
	if strings.TrimSpace(v) == "" {
		return invalid(422, "name: required")
	}
	if utf8.RuneCountInString(v) > 200 || !utf8.ValidString(v) {
		return invalid(422, "name: at most 200 characters of valid UTF-8")
	}
	return nil
}

func (s *Server) createActivity(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name    string `json:"name"`
		StartAt string `json:"start_at"`
		EndAt   string `json:"end_at"`
	}
	if err := DecodeJSON(r, &body); err != nil {
		WriteError(w, err)
		return
	}
	if err := checkName(body.Name); err != nil {
		WriteError(w, err)
		return
	}
	start, err := parseTime("start_at", body.StartAt)
	if err != nil {
		WriteError(w, err)
		return
	}
	end, err := parseTime("end_at", body.EndAt)
	if err != nil {
		WriteError(w, err)
		return
	}
	if !end.After(start) {
		WriteError(w, invalid(422, "end_at: must be after start_at"))
		return
	}
	id, err := s.db.CreateActivity(r.Context(), &flashgate.Activity{Name: body.Name, StartAt: start, EndAt: end})
	if err != nil {
		s.fail(w, "create activity", err)
		return
	}
	WriteJSON(w, 201, map[string]any{"code": "ok", "id": id})
}

type itemOut struct {
	ID             int64           `json:"id"`
	ActivityID     int64           `json:"activity_id"`
	Name           string          `json:"name"`
	Price          flashgate.Money `json:"price"`
	Points         int64           `json:"points"`
	Stock          int64           `json:"stock"`
	Shards         int             `json:"shards"`
	RequirePath    bool            `json:"require_path"`
	RequireCaptcha bool            `json:"require_captcha"`
}

// newItemOut is an item as the admin API shows it.
func newItemOut(it *flashgate.Item) itemOut {
	return itemOut{it.ID, it.ActivityID, it.Name, it.Price, it.Points, it.Stock, it.Shards, it.RequirePath, it.RequireCaptcha}
}

func (s *Server) getActivity(w http.ResponseWriter, r *http.Request) {
	id, ok := pathIDBody(w, r, nil)
	if !ok {
		return
	}
	a, err := s.db.Activity(r.Context(), id)
	if err != nil {
		s.fail(w, "read activity", err)
		return
	}
	items := make([]itemOut, 0, len(a.Items))
	for _, it := range a.Items {
		items = append(items, newItemOut(&it))
	}
	WriteJSON(w, 200, map[string]any{"code": "ok", "activity": map[string]any{
		"id": a.ID, "name": a.Name, "start_at": a.StartAt, "end_at": a.EndAt,
		"published": a.PublishedAt != nil, "published_at": a.PublishedAt, "items": items,
		"publish_at": a.PublishAt, "status": a.StatusAt(s.now()),
	}})
}

func (s *Server) addItem(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name           string          `json:"name"`
		Price          json.RawMessage `json:"price"`
		Stock          *int64          `json:"stock"`
		Shards         *int            `json:"shards"`
		Points         *int64          `json:"points"`
		RequirePath    bool            `json:"require_path"`
		RequireCaptcha bool            `json:"require_captcha"`
	}
	activity, ok := pathIDBody(w, r, &body)
	if !ok {
		return
	}
	it := flashgate.Item{ActivityID: activity, Name: body.Name, Shards: 8, RequirePath: body.RequirePath, RequireCaptcha: body.RequireCaptcha}
	if err := checkName(body.Name); err != nil {
		WriteError(w, err)
		return
	}
	price := strings.Trim(string(body.Price), `"`)
	if len(body.Price) == 0 || price == "null" {
		WriteError(w, invalid(422, "price: required"))
		return
	}
	var err error
	if it.Price, err = flashgate.ParseMoney(price); err != nil {
		WriteError(w, invalid(422, "price: %v", err))
		return
	}
	if body.Stock == nil {
		WriteError(w, invalid(422, "stock: required"))
		return
	}
	if it.Stock = *body.Stock; it.Stock < 1 || it.Stock > 1_000_000_000 {
		WriteError(w, invalid(422, "stock: must be from 1 to 1000000000"))
		return
	}
	if body.Shards != nil {
		if it.Shards = *body.Shards; it.Shards < 1 || it.Shards > 256 {
			WriteError(w, invalid(422, "shards: must be from 1 to 256"))
			return
		}
	}
	it.Points = int64(it.Price)
	if body.Points != nil {
		if it.Points = *body.Points; it.Points < 0 {
			WriteError(w, invalid(422, "points: must not be negative"))
			return
		}
	}
	id, err := s.db.AddItem(r.Context(), &it)
	if err != nil {
		s.fail(w, "add item", err)
		return
	}
	WriteJSON(w, 201, map[string]any{"code": "ok", "id": id})
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	id, ok := pathIDBody(w, r, nil)
	if !ok {
		return
	}
	n, err := s.ops.Numbers(r.Context(), id)
	if err != nil {
		s.fail(w, "item stats", err)
		return
	}
	WriteJSON(w, 200, map[string]any{"code": "ok", "stats": n})
}

// fail writes err; anything that is not a domain error is logged and
// answered as internal without detail.
func (s *Server) fail(w http.ResponseWriter, what string, err error) {
	var e *flashgate.Error
	if !errors.As(err, &e) {
		s.log.Error(what, "err", err)
		err = flashgate.Errorf(flashgate.Unavailable, "%s failed: a dependency is unavailable", what)
	}
	WriteError(w, err)
}

// pathIDBody reads the {id} path value and, when body is not nil, decodes the
// JSON request body into it. On a bad id or body it writes the 4xx answer and
// reports false, so a handler only returns.
func pathIDBody(w http.ResponseWriter, r *http.Request, body any) (int64, bool) {
	id, err := PathID(r, "id")
	if err == nil && body != nil {
		err = DecodeJSON(r, body)
	}
	if err != nil {
		WriteError(w, err)
		return 0, false
	}
	return id, true
}
