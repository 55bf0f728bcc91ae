package admin

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/edge"
)

func decode(body string) (edge.Ban, error) {
	return decodeBan(httptest.NewRequest("POST", "/admin/v1/blacklist", strings.NewReader(body)))
}

func TestDecodeBan(t *testing.T) {
	good := map[string]edge.Ban{
		`{"user_id":7}`:                          {UserID: 7},
		`{"user_id":7,"ttl":"10m","reason":"x"}`: {UserID: 7, TTL: 10 * time.Minute, Reason: "x"},
		`{"ip":" 203.0.113.9 "}`:                 {IP: "203.0.113.9"},
		`{"ip":"::ffff:192.0.2.1","ttl":""}`:     {IP: "192.0.2.1"},
		`{"ip":"2001:DB8::1"}`:                   {IP: "2001:db8::1"},
		`{"ip":"fe80::1%eth0"}`:                  {IP: "fe80::1"},
	}
	for body, want := range good {
		if got, err := decode(body); err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", body, got, err, want)
		}
	}
}

func TestDecodeBanRejects(t *testing.T) {
	for _, c := range []struct {
		body   string
		status int
		field  string
	}{
		{``, 400, "body"},
		{`{"user_id":1.5}`, 400, "user_id"},
		{`{"ip":["1.2.3.4"]}`, 400, "ip"},
		{`{}`, 422, "user_id, ip"},
		{`{"user_id":null,"ip":null}`, 422, "user_id, ip"},
		{`{"user_id":1,"ip":"1.2.3.4"}`, 422, "user_id, ip"},
		{`{"user_id":0}`, 422, "user_id"},
		{`{"ip":""}`, 422, "ip"},
		{`{"user_id":1,"ttl":"1 day"}`, 422, "ttl"},
		{`{"user_id":1,"reason":"` + strings.Repeat("r", 201) + `"}`, 422, "reason"},
	} {
		_, err := decode(c.body)
		var e *flashgate.Error
		if !errors.As(err, &e) || e.Code != flashgate.Invalid || e.Status != c.status || !strings.HasPrefix(e.Message, c.field+":") {
			t.Errorf("%.40s: %v, want %d naming %s", c.body, err, c.status, c.field)
		}
	}
}
