package gateway

import (
	"bytes"
	"slices"
	"sort"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/flashgate/flashgate"
)

// Route is one method and path pattern a listener answers, as docs/api.md
// lists it. In a pattern, {name} stands for one non-empty path segment and a
// final {name...} for the rest of the path, as in net/http. A GET route
// answers HEAD too.
type Route struct {
	Method  string
	Pattern string
}

func (r Route) String() string { return r.Method + " " + r.Pattern }

// route is a Route with its handler, its pattern split once so that
// matching a request allocates nothing.
type route struct {
	Route
	segs    []string // the pattern's segments after the leading '/'
	rest    bool     // the last segment is {name...}
	handler fasthttp.RequestHandler
}

func newRoute(method, pattern string, h fasthttp.RequestHandler) route {
	if !strings.HasPrefix(pattern, "/") {
		panic("gateway: route pattern must start with '/': " + pattern)
	}
	r := route{Route: Route{method, pattern}, segs: strings.Split(pattern[1:], "/"), handler: h}
	last := r.segs[len(r.segs)-1]
	r.rest = strings.HasPrefix(last, "{") && strings.HasSuffix(last, "...}")
	return r
}

func isParam(seg string) bool { return len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' }

// match reports whether path fits the pattern.
func (r *route) match(path []byte) bool {
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	p := path[1:]
	for i, s := range r.segs {
		last := i == len(r.segs)-1
		if last && r.rest {
			return true
		}
		seg := p
		j := bytes.IndexByte(p, '/')
		if j >= 0 {
			if last {
				return false // more path than pattern
			}
			seg, p = p[:j], p[j+1:]
		} else if !last {
			return false // more pattern than path
		}
		if isParam(s) {
			if len(seg) == 0 {
				return false
			}
		} else if string(seg) != s {
			return false
		}
	}
	return true
}

// allows reports whether the route answers method.
func (r *route) allows(method []byte) bool {
	return string(method) == r.Method || (r.Method == fasthttp.MethodGet && string(method) == fasthttp.MethodHead)
}

// Routes returns every route the gateway answers, the built-in ones and
// those mounted with Handle, sorted by pattern then method. docs/api.md
// lists the same, and a test holds the two together.
func (g *Gateway) Routes() []Route {
	out := make([]Route, 0, len(g.routes))
	for _, r := range g.routes {
		out = append(out, r.Route)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pattern != out[j].Pattern {
			return out[i].Pattern < out[j].Pattern
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// dispatch runs the first route that fits the request, or answers 405 with
// Allow when routes fit the path under other methods, else 404.
func (g *Gateway) dispatch(ctx *fasthttp.RequestCtx, path []byte) {
	method := ctx.Method()
	for i := range g.routes {
		r := &g.routes[i]
		if r.allows(method) && r.match(path) {
			r.handler(ctx)
			return
		}
	}
	var allow []string
	for i := range g.routes {
		r := &g.routes[i]
		if r.match(path) {
			allow = append(allow, r.Method)
			if r.Method == fasthttp.MethodGet {
				allow = append(allow, fasthttp.MethodHead)
			}
		}
	}
	if len(allow) == 0 {
		g.count(routeNone, writeError(ctx, flashgate.Errorf(flashgate.NotFound, "no route for %s %s", method, path)))
		return
	}
	sort.Strings(allow)
	allow = slices.Compact(allow)
	allowed := strings.Join(allow, ", ")
	ctx.Response.Header.Set("Allow", allowed)
	g.count(routeNone, writeError(ctx, &flashgate.Error{Code: flashgate.Invalid, Status: fasthttp.StatusMethodNotAllowed,
		Message: "method " + string(method) + " not allowed here; allowed: " + allowed}))
}
