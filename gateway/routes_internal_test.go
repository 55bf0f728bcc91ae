package gateway

import "testing"

func TestRouteMatch(t *testing.T) {
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"/", "/", true},
		{"/", "/x", false},
		{"/healthz", "/healthz", true},
		{"/healthz", "/healthz/", false},
		{"/healthz", "/health", false},
		{"/api/v1/items/{item_id}", "/api/v1/items/42", true},
		{"/api/v1/items/{item_id}", "/api/v1/items/", false},
		{"/api/v1/items/{item_id}", "/api/v1/items/42/x", false},
		{"/api/v1/items/{item_id}", "/api/v1/items", false},
		{"/api/v1/orders/{order_id}/ws", "/api/v1/orders/01ABC-1/ws", true},
		{"/api/v1/orders/{order_id}/ws", "/api/v1/orders//ws", false},
		{"/api/v1/orders/{order_id}/ws", "/api/v1/orders/01ABC-1/pay", false},
		{"/static/{file...}", "/static/", true},
		{"/static/{file...}", "/static/css/a.css", true},
		{"/static/{file...}", "/staticx", false},
		{"/healthz", "", false},
	}
	for _, c := range cases {
		r := newRoute("GET", c.pattern, nil)
		if got := r.match([]byte(c.path)); got != c.want {
			t.Errorf("%s matches %q: %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}

// Matching runs for every request but the buy: it must not allocate.
func TestRouteMatchDoesNotAllocate(t *testing.T) {
	r := newRoute("GET", "/api/v1/orders/{order_id}/ws", nil)
	path := []byte("/api/v1/orders/01M807QCWGXJ1HTQ3CB4FWCWB6-1/ws")
	method := []byte("HEAD")
	if n := testing.AllocsPerRun(1000, func() {
		if !r.allows(method) || !r.match(path) {
			t.Fatal("no match")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per match", n)
	}
}
