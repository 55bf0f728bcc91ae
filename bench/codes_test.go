package bench

import "testing"

func TestParseCode(t *testing.T) {
	cases := []struct {
		body string
		want code
	}{
		{`{"code":"ok","order_id":"x","status":"pending"}`, codeOK},
		{`{"code": "sold_out", "message": "no stock"}`, codeSoldOut},
		{`{"message":"say \"code\":\"ok\"","code":"duplicate","order_id":"1"}`, codeDuplicate},
		{`{"message":"code","code":"rate_limited"}`, codeRateLimited},
		{`{"code":"teapot"}`, codeOther},
		{`not json`, codeNoCode},
		{``, codeNoCode},
		{`{"code":"unterminated`, codeNoCode},
	}
	for _, c := range cases {
		if got := parseCode([]byte(c.body)); got != c.want {
			t.Errorf("parseCode(%s) = %s, want %s", c.body, got, c.want)
		}
	}
	id, ok := jsonString([]byte(`{"code":"ok","order_id" : "0193abc","status":"pending"}`), "order_id")
	if !ok || string(id) != "0193abc" {
		t.Errorf("order_id = %q, %v", id, ok)
	}
}

func TestParseCodeAllocatesNothing(t *testing.T) {
	body := []byte(`{"code":"sold_out","message":"no stock left"}`)
	if n := testing.AllocsPerRun(100, func() { _ = parseCode(body) }); n != 0 {
		t.Errorf("parseCode allocates %v times per call", n)
	}
}
