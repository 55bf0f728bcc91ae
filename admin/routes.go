package admin

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/flashgate/flashgate"
)

// routeMux is the admin listener's http.ServeMux, remembering what it is
// given so that Routes can list it: every route registered on s.mux, by
// whichever file, shows up without further bookkeeping.
type routeMux struct {
	http.ServeMux
	patterns []string
	open     map[string]bool // patterns served without the admin token
}

// Open registers h for pattern, served without the admin token (probes,
// scrapers, the console's files).
func (m *routeMux) Open(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.HandleFunc(pattern, h)
	if m.open == nil {
		m.open = map[string]bool{}
	}
	m.open[pattern] = true
}

// Handle registers h for pattern.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	m.patterns = append(m.patterns, pattern)
}

// HandleFunc registers h for pattern.
func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// Routes returns every "METHOD /pattern" the admin listener answers,
// sorted, those behind the token and the open ones. docs/api.md lists the
// same, and a test holds the two together.
func (s *Server) Routes() []string {
	out := make([]string, 0, len(s.mux.patterns))
	for _, p := range s.mux.patterns {
		// "GET /{$}" is "GET /" exactly, as docs/api.md writes it.
		out = append(out, strings.TrimSuffix(p, "{$}"))
	}
	sort.Strings(out)
	return out
}

// noRoute answers a request no route took. The mux's own answer, h, tells
// a wrong method (405, the path's methods in Allow) from an unknown path.
func noRoute(w http.ResponseWriter, r *http.Request, h http.Handler) {
	probe := &probeWriter{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		methodNotAllowed(w, r, probe.header.Get("Allow"))
		return
	}
	WriteError(w, flashgate.Errorf(flashgate.NotFound, "no route for %s %s", r.Method, r.URL.Path))
}

// methodNotAllowed answers 405 with the methods the path serves.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	WriteError(w, &flashgate.Error{Code: flashgate.Invalid, Status: http.StatusMethodNotAllowed,
		Message: fmt.Sprintf("method %s not allowed here; allowed: %s", r.Method, allow)})
}

// probeWriter keeps the status and headers of an answer and drops its body.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }

func (p *probeWriter) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

func (p *probeWriter) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}
