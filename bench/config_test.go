package bench

import (
	"io"
	"testing"

	"github.com/flashgate/flashgate/internal/config"
)

func TestParseConfigDefaults(t *testing.T) {
	env := map[string]string{
		"FLASHGATE_HTTP_ADDR":   "127.0.0.1:9080",
		"FLASHGATE_AUTH_SECRET": "from-the-environment-0123456789abcdef",
		"FLASHGATE_MYSQL_DSN":   "u:p@tcp(db:3306)/fg",
	}
	c, err := parseConfig([]string{"--admin", "http://adm:1/", "--scenario", "fair", "--stock", "7"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Target != "http://127.0.0.1:9080" || c.Admin != "http://adm:1" || c.AuthSecret != env["FLASHGATE_AUTH_SECRET"] ||
		c.AdminToken != config.DevAdminToken || c.MySQLDSN != env["FLASHGATE_MYSQL_DSN"] {
		t.Errorf("settings from env and flags: %+v", c)
	}
	if c.Users != 7 || c.Stock != 7 || c.Connections != c.Concurrency || !c.closedLoop() || !c.Verify {
		t.Errorf("scenario defaults: %+v", c)
	}

	c, err = parseConfig([]string{"--scenario", "buy", "--rate", "1000", "--duration", "2s", "--concurrency", "10"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Users != 2110 || c.Stock != c.Users || c.Target != "http://127.0.0.1:8080" || c.AuthSecret != config.DevAuthSecret || c.MySQLDSN != DefaultMySQLDSN {
		t.Errorf("open-loop buy defaults: %+v", c)
	}
}
