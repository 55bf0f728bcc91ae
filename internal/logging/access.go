package logging

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
)

// The access log writes one info line per request: method, path (never the
// query, which may carry a path token), status, bytes of the body, duration
// and the peer address. It is a wrapper installed only when
// FLASHGATE_ACCESS_LOG is on, so that with it off the request path is
// exactly what it was, allocation-free rejects included.

// AccessFastHTTP wraps a fasthttp handler (the gateway) with the access log.
func AccessFastHTTP(log *slog.Logger, next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		start := time.Now()
		next(ctx)
		// Not ctx as the context: a RequestCtx is recycled after the
		// handler, and a handler may hold on to what it is given.
		log.LogAttrs(context.Background(), slog.LevelInfo, "access",
			slog.String("method", string(ctx.Method())),
			slog.String("path", string(ctx.Path())),
			slog.Int("status", ctx.Response.StatusCode()),
			slog.Int("bytes", len(ctx.Response.Body())),
			slog.Duration("duration", time.Since(start)),
			slog.String("client", ctx.RemoteIP().String()),
		)
	}
}

// AccessHTTP wraps a net/http handler (the admin API) with the access log.
func AccessHTTP(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.LogAttrs(r.Context(), slog.LevelInfo, "access",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("client", r.RemoteAddr),
		)
	})
}

// recorder notes the status and size of a net/http response.
type recorder struct {
	http.ResponseWriter
	status, bytes int
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the writer's Flush and Hijack.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
