package gateway_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flashgate/flashgate/gateway"
)

// rawExchange writes raw to addr and reads the answer until the server
// closes the connection, which it must do within wait.
func rawExchange(t *testing.T, addr, raw string, wait time.Duration) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", wait, err)
	}
	return resp
}

func checkInvalid(t *testing.T, what string, resp *http.Response, status int) {
	t.Helper()
	defer resp.Body.Close()
	var body struct{ Code, Message string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != status || body.Code != "invalid" {
		t.Fatalf("%s: %d %+v %v, want %d invalid", what, resp.StatusCode, body, err, status)
	}
	if strings.Contains(body.Message, "Bearer") || strings.Contains(body.Message, "eyJ") {
		t.Fatalf("%s: the answer echoes the request: %q", what, body.Message)
	}
}

func TestServerLimits(t *testing.T) {
	h := newHarness(t)
	_, addr := h.start(gateway.Config{}, func(s *fasthttp.Server) { s.ReadTimeout = 300 * time.Millisecond })
	auth := "Authorization: Bearer " + h.token(1) + "\r\n"

	big := "POST /api/v1/seckill/101 HTTP/1.1\r\nHost: gw\r\n" + auth + "X-Pad: " + strings.Repeat("a", 9<<10) + "\r\n\r\n"
	checkInvalid(t, "9 KiB of headers", rawExchange(t, addr, big, 2*time.Second), 431)

	body := strings.Repeat("a", 65<<10)
	long := "POST /api/v1/seckill/101 HTTP/1.1\r\nHost: gw\r\n" + auth + "Content-Length: 66560\r\n\r\n" + body
	checkInvalid(t, "65 KiB of body", rawExchange(t, addr, long, 2*time.Second), 413)

	checkInvalid(t, "garbage", rawExchange(t, addr, "\x00\x01 nonsense\r\n\r\n", 2*time.Second), 400)

	// A client that sends half its headers and stalls is answered and cut
	// off once ReadTimeout has passed.
	start := time.Now()
	slow := "POST /api/v1/seckill/101 HTTP/1.1\r\nHost: gw\r\n" + auth
	checkInvalid(t, "stalled headers", rawExchange(t, addr, slow, 2*time.Second), 408)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("stalled client cut off after %v, before ReadTimeout", d)
	}
}
