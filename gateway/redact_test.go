package gateway

import "testing"

func TestRedactSecrets(t *testing.T) {
	for in, want := range map[string]string{
		`error when serving connection: "POST /x HTTP/1.1\r\nAuthorization: Bearer eyJhb.eyJz.c2ln\r\n"`: `error when serving connection: "POST /x HTTP/1.1\r\nAuthorization: Bearer [redacted]\r\n"`,
		`GET /api/v1/orders/1/ws?token=eyJ.a-b_c%2E&x=1`:                                                 `GET /api/v1/orders/1/ws?token=[redacted]&x=1`,
		`POST /api/v1/seckill/7?PATH=AAAA_bbb- HTTP/1.1`:                                                 `POST /api/v1/seckill/7?PATH=[redacted] HTTP/1.1`,
		`bearer  x`:           `bearer  [redacted]`,
		`nothing secret here`: `nothing secret here`,
	} {
		if got := redactSecrets(in); got != want {
			t.Errorf("redact(%q)\n = %q\nwant %q", in, got, want)
		}
	}
}
