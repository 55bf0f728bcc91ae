package admin

import (
	"embed"
	"net/http"
	"strconv"
	"strings"

	"github.com/flashgate/flashgate/internal/webasset"
)

// The console (contract §12): hand-written HTML, CSS and JavaScript in
// web/, embedded, served from memory with ETags. The files hold no data and
// no secret, so they are served without the admin token; every call the
// console makes carries the token the operator typed, which the page keeps
// in sessionStorage (this tab only).
//
//go:embed web
var webFS embed.FS

func loadWeb() *webasset.Set { return webasset.MustSub(webFS, "web") }

// page answers the console's files; false when r is not for one.
func (s *Server) page(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	var name string
	switch p := r.URL.Path; {
	case p == "/" || p == "/index.html":
		name = "index.html"
	case p == "/favicon.ico":
		name = "static/favicon.svg"
	case strings.HasPrefix(p, "/static/"):
		name = p[1:]
	default:
		return false
	}
	f := s.web.Get(name)
	if f == nil {
		return false
	}
	body, etag, gz := f.Pick(r.Header.Get("Accept-Encoding"))
	h := w.Header()
	f.SetHeaders(h.Set, etag)
	// The console holds the admin token: no other site may frame it.
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	if webasset.NotModified(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	h.Set("Content-Type", f.ContentType)
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
	return true
}
