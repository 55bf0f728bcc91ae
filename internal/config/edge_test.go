package config_test

import (
	"strings"
	"testing"

	"github.com/flashgate/flashgate/internal/config"
)

// values returns settings for FromValues: enough for every role to start,
// with overrides.
func values(overrides map[string]string) map[string]*string {
	vals := map[string]*string{}
	set := func(k, v string) { vals[k] = &v }
	set("FLASHGATE_KAFKA_BROKERS", "127.0.0.1:9092")
	set("FLASHGATE_AUTH_SECRET", "a-strong-secret-of-more-than-32-bytes!")
	set("FLASHGATE_ADMIN_TOKEN", "an-admin-token-of-enough-bytes")
	for k, v := range overrides {
		set(k, v)
	}
	return vals
}

func TestWeakSecretsRefusedOutsideDev(t *testing.T) {
	weak := map[string]map[string]string{
		"no auth secret":    {"FLASHGATE_AUTH_SECRET": ""},
		"short auth secret": {"FLASHGATE_AUTH_SECRET": "short-secret-31-bytes-long-xxxx"},
		"dev auth secret":   {"FLASHGATE_AUTH_SECRET": config.DevAuthSecret},
		"no admin token":    {"FLASHGATE_ADMIN_TOKEN": ""},
		"short admin token": {"FLASHGATE_ADMIN_TOKEN": "fifteen-bytes!!"},
		"dev admin token":   {"FLASHGATE_ADMIN_TOKEN": config.DevAdminToken},
	}
	// Each role refuses a weak secret it uses, and does not ask for one
	// it does not use: the public gateway never holds the admin token.
	uses := map[string]string{
		config.RoleGateway: "FLASHGATE_AUTH_SECRET",
		config.RoleAdmin:   "FLASHGATE_ADMIN_TOKEN",
		config.RoleWorker:  "",
	}
	for role, secret := range uses {
		if _, err := config.FromValues(role, values(nil)); err != nil {
			t.Fatalf("%s with strong secrets: %v", role, err)
		}
		for name, o := range weak {
			_, err := config.FromValues(role, values(o))
			_, used := o[secret]
			if !used {
				if err != nil {
					t.Errorf("%s refused %s, a secret it does not use: %v", role, name, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s started with %s", role, name)
				continue
			}
			for env, v := range o {
				if !strings.Contains(err.Error(), env) {
					t.Errorf("%s, %s: error %q does not name %s", role, name, err, env)
				}
				if v != "" && strings.Contains(err.Error(), v) {
					t.Errorf("%s, %s: error %q echoes the secret", role, name, err)
				}
			}
		}
	}
	// dev falls back to its public defaults.
	c, err := config.FromValues(config.RoleDev, values(map[string]string{"FLASHGATE_AUTH_SECRET": "", "FLASHGATE_ADMIN_TOKEN": "", "FLASHGATE_KAFKA_BROKERS": ""}))
	if err != nil || c.AuthSecret != config.DevAuthSecret || c.AdminToken != config.DevAdminToken {
		t.Fatalf("dev without secrets: %v", err)
	}
}

func TestEdgeSettings(t *testing.T) {
	c, err := config.FromValues(config.RoleGateway, values(map[string]string{
		"FLASHGATE_USER_RATE":        "2.5",
		"FLASHGATE_IP_RATE":          "0",
		"FLASHGATE_TRUSTED_PROXIES":  " 10.0.0.0/8, ::1 ,192.168.1.7",
		"FLASHGATE_MAX_CONNS_PER_IP": "64",
		"FLASHGATE_AUTOBAN_AFTER":    "20",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.UserRate != 2.5 || c.IPRate != 0 || len(c.TrustedProxies) != 3 || c.MaxConnsPerIP != 64 || c.AutobanAfter != 20 {
		t.Fatalf("config: %+v", c)
	}
	for env, v := range map[string]string{
		"FLASHGATE_TRUSTED_PROXIES":  "10.0.0.0/8, proxy.internal",
		"FLASHGATE_USER_RATE":        "-1",
		"FLASHGATE_IP_RATE":          "lots",
		"FLASHGATE_MAX_CONNS_PER_IP": "-2",
	} {
		_, err := config.FromValues(config.RoleGateway, values(map[string]string{env: v}))
		if err == nil || !strings.HasPrefix(err.Error(), env+": ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%q: want one line naming it, got %v", env, v, err)
		}
	}
}
