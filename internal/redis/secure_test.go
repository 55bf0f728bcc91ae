package redis_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"

	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/testenv"
)

// works opens a store with o and runs what flashgate does on every Redis:
// a Lua script (with its EVALSHA/EVAL fallback) and a cached read.
func works(t *testing.T, o redis.Options) error {
	t.Helper()
	ctx := context.Background()
	o.Prefix = "fgsecure"
	s, err := redis.Open(ctx, o)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		return err
	}
	if _, err := s.Preload(ctx, 1, 0, 3); err != nil {
		return err
	}
	res := reserve(t, s, 1, 0, 7, "o1")
	if res.Outcome != redis.Reserved || res.Left != 2 {
		t.Fatalf("reserve on a secured Redis: %+v", res)
	}
	return nil
}

func TestRedisPassword(t *testing.T) {
	srv := testenv.StartRedisServer(t, nil, "requirepass a-redis-password")
	if err := works(t, redis.Options{Addrs: []string{srv.Addr}, Password: "a-redis-password"}); err != nil {
		t.Fatalf("with the password: %v", err)
	}
	for name, o := range map[string]redis.Options{
		"no password":    {Addrs: []string{srv.Addr}},
		"wrong password": {Addrs: []string{srv.Addr}, Password: "not-it"},
	} {
		err := works(t, o)
		if err == nil {
			t.Errorf("%s: connected", name)
		} else if strings.Contains(err.Error(), "a-redis-password") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
}

func TestRedisACLUser(t *testing.T) {
	srv := testenv.StartRedisServer(t, nil,
		"user default off",
		"user flashgate on >an-acl-password ~fgsecure* &* +@all",
		"user reader on >reader-password ~* +@read +@connection")
	if err := works(t, redis.Options{Addrs: []string{srv.Addr}, Username: "flashgate", Password: "an-acl-password"}); err != nil {
		t.Fatalf("ACL user: %v", err)
	}
	if err := works(t, redis.Options{Addrs: []string{srv.Addr}, Username: "flashgate", Password: "reader-password"}); err == nil {
		t.Error("connected with another user's password")
	}
	if err := works(t, redis.Options{Addrs: []string{srv.Addr}, Password: "an-acl-password"}); err == nil {
		t.Error("connected as the disabled default user")
	}
	// A user without the script and write rights gets errors, not a store
	// that pretends to work.
	if err := works(t, redis.Options{Addrs: []string{srv.Addr}, Username: "reader", Password: "reader-password"}); err == nil {
		t.Error("a read-only user could preload stock")
	}
}

func TestRedisTLS(t *testing.T) {
	files := testenv.NewTLSFiles(t)
	srv := testenv.StartRedisServer(t, &files, "requirepass tls-redis-password")
	clientTLS, err := config.ClientTLS(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	if err := works(t, redis.Options{Addrs: []string{srv.Addr}, Password: "tls-redis-password", TLS: clientTLS}); err != nil {
		t.Fatalf("TLS with the CA: %v", err)
	}
	if err := works(t, redis.Options{Addrs: []string{srv.Addr}, Password: "tls-redis-password"}); err == nil {
		t.Error("plaintext client connected to a TLS-only port")
	}
	// Without the test CA the server's certificate is not trusted.
	if err := works(t, redis.Options{Addrs: []string{srv.Addr}, Password: "tls-redis-password", TLS: &tls.Config{MinVersion: tls.VersionTLS12}}); err == nil {
		t.Error("a certificate from an unknown CA was trusted")
	}
}
