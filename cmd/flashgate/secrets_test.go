package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/flashgate/flashgate/internal/auth"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/paysim"
	"github.com/flashgate/flashgate/internal/testenv"
)

// securedFleet is every dependency with credentials, and the settings that
// reach them; secrets lists the values no output may contain.
type securedFleet struct {
	vars    map[string]string
	secrets []string
}

func newSecuredFleet(t *testing.T) securedFleet {
	t.Helper()
	files := testenv.NewTLSFiles(t)
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	const (
		redisPass  = "redis-pass-do-not-print-me"
		kafkaPass  = "kafka-pass-do-not-print-me"
		mysqlPass  = "mysql-pass-do-not-print-me"
		authSecret = "auth-secret-do-not-print-me-0123456789"
		adminToken = "admin-token-do-not-print-me"
	)
	redisSrv := testenv.StartRedisServer(t, &files, "user default off", "user fleet on >"+redisPass+" ~* &* +@all")
	broker, err := kafka.StartBrokerWith(kafka.BrokerOptions{
		Topic: "flashgate.reservations", Partitions: 2,
		SASL: kafka.SASLScramSHA512, Username: "fleet", Password: kafkaPass,
		TLS: &tls.Config{Certificates: []tls.Certificate{pair}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)

	// A MariaDB user with a password, on the test's own database.
	rootDSN := testenv.Database(t)
	cfg, err := mysql.ParseDSN(rootDSN)
	if err != nil {
		t.Fatal(err)
	}
	user := "fgsec" + strings.TrimPrefix(cfg.DBName, "fgtest_")
	root, err := sqlx.Open("mysql", testenv.MySQLServerDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, q := range []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", user, mysqlPass),
		fmt.Sprintf("GRANT ALL ON `%s`.* TO '%s'@'%%'", cfg.DBName, user),
	} {
		if _, err := root.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if db, err := sqlx.Open("mysql", testenv.MySQLServerDSN()); err == nil {
			db.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user))
			db.Close()
		}
	})
	cfg.User, cfg.Passwd = user, mysqlPass

	key, err := paysim.GenerateMerchantKey()
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	privatePEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))

	return securedFleet{
		vars: map[string]string{
			"FLASHGATE_HTTP_ADDR":          "127.0.0.1:0",
			"FLASHGATE_ADMIN_ADDR":         "127.0.0.1:0",
			"FLASHGATE_PAYSIM_ADDR":        "127.0.0.1:0",
			"FLASHGATE_LOG_LEVEL":          "debug",
			"FLASHGATE_LOG_FORMAT":         "json",
			"FLASHGATE_ACCESS_LOG":         "true",
			"FLASHGATE_REDIS_ADDR":         redisSrv.Addr,
			"FLASHGATE_REDIS_PREFIX":       "fgsec",
			"FLASHGATE_REDIS_USERNAME":     "fleet",
			"FLASHGATE_REDIS_PASSWORD":     redisPass,
			"FLASHGATE_REDIS_TLS":          "true",
			"FLASHGATE_REDIS_TLS_CA":       files.CA,
			"FLASHGATE_KAFKA_BROKERS":      broker.Addrs()[0],
			"FLASHGATE_KAFKA_PARTITIONS":   "2",
			"FLASHGATE_KAFKA_SASL":         kafka.SASLScramSHA512,
			"FLASHGATE_KAFKA_USERNAME":     "fleet",
			"FLASHGATE_KAFKA_PASSWORD":     kafkaPass,
			"FLASHGATE_KAFKA_TLS":          "true",
			"FLASHGATE_KAFKA_TLS_CA":       files.CA,
			"FLASHGATE_MYSQL_DSN":          cfg.FormatDSN(),
			"FLASHGATE_AUTH_SECRET":        authSecret,
			"FLASHGATE_ADMIN_TOKEN":        adminToken,
			"FLASHGATE_ALIPAY_GATEWAY":     "http://127.0.0.1:1/gateway.do",
			"FLASHGATE_ALIPAY_APP_ID":      "2021000000000000",
			"FLASHGATE_ALIPAY_PRIVATE_KEY": privatePEM,
			"FLASHGATE_ALIPAY_PUBLIC_KEY":  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})),
		},
		// The key's PEM body is checked by a line of it.
		secrets: []string{redisPass, kafkaPass, mysqlPass, authSecret, adminToken, strings.Split(privatePEM, "\n")[1]},
	}
}

func (f securedFleet) check(t *testing.T, what, output string) {
	t.Helper()
	for _, s := range f.secrets {
		if strings.Contains(output, s) {
			t.Errorf("%s printed a secret (%.12s…):\n%s", what, s, output)
		}
	}
}

// Every role runs against a Redis with an ACL user over TLS, a Kafka with
// SASL SCRAM over TLS and a MariaDB user with a password, with every secret
// set, logging at debug in JSON with the access log on; a shopper and an
// admin use it; and nothing any process prints (banner, logs, --help,
// errors) contains a secret.
func TestNoProcessPrintsASecret(t *testing.T) {
	f := newSecuredFleet(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"dev"}, env(f.vars), out, errb) }()
	var gateway, admin string
	testenv.Eventually(t, 30*time.Second, func() error {
		select {
		case code := <-done:
			t.Fatalf("dev exited %d: %s", code, errb.String())
		default:
		}
		for _, line := range strings.Split(out.String(), "\n") {
			if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "gateway" {
				gateway = fields[1]
			} else if len(fields) >= 2 && fields[0] == "admin" {
				admin = fields[1]
			}
		}
		if gateway == "" || admin == "" {
			return fmt.Errorf("banner not printed yet: %q", out.String())
		}
		return nil
	})
	do := func(method, url, token, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	adminToken := f.vars["FLASHGATE_ADMIN_TOKEN"]
	if code := do("POST", admin+"/admin/v1/activities", adminToken, fmt.Sprintf(`{"name":"s","start_at":%q,"end_at":%q}`,
		time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), time.Now().Add(time.Hour).UTC().Format(time.RFC3339))); code != 201 {
		t.Errorf("create activity: %d", code)
	}
	if code := do("POST", admin+"/admin/v1/activities/1/items", adminToken, `{"name":"p","price":"1.00","stock":5,"shards":2}`); code != 201 {
		t.Errorf("create item: %d", code)
	}
	if code := do("POST", admin+"/admin/v1/activities/1/publish", adminToken, ""); code != 200 {
		t.Errorf("publish: %d", code)
	}
	if code := do("POST", admin+"/admin/v1/activities", "wrong-token-of-some-length", "{}"); code != 401 {
		t.Errorf("admin with a wrong token: %d", code)
	}
	token := auth.NewSigner([]byte(f.vars["FLASHGATE_AUTH_SECRET"])).Mint(42, time.Now().Add(time.Hour))
	testenv.Eventually(t, 10*time.Second, func() error {
		if code := do("POST", gateway+"/api/v1/seckill/1", token, ""); code != 202 && code != 409 {
			return fmt.Errorf("buy: %d", code)
		}
		return nil
	})
	do("POST", gateway+"/api/v1/seckill/1", "not.a.token", "")
	do("POST", gateway+"/api/v1/orders/nope/pay", token, `{"channel":"alipay"}`)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("dev exit code %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop")
	}
	if !strings.Contains(errb.String(), `"level":"INFO","msg":"published activity"`) {
		t.Errorf("no JSON logs to check:\n%s", errb.String())
	}
	f.check(t, "dev's banner", out.String())
	f.check(t, "dev's logs", errb.String())

	// Each role on its own starts, says where it runs, and stops; these
	// take the MySQL password apart from the DSN.
	separate := map[string]string{}
	for k, v := range f.vars {
		separate[k] = v
	}
	dsn, err := mysql.ParseDSN(f.vars["FLASHGATE_MYSQL_DSN"])
	if err != nil {
		t.Fatal(err)
	}
	separate["FLASHGATE_MYSQL_PASSWORD"], dsn.Passwd = dsn.Passwd, ""
	separate["FLASHGATE_MYSQL_DSN"] = dsn.FormatDSN()
	for _, role := range []string{"gateway", "worker", "admin"} {
		ctx, cancel := context.WithCancel(context.Background())
		out, errb := &syncBuffer{}, &syncBuffer{}
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{role}, env(separate), out, errb) }()
		testenv.Eventually(t, 20*time.Second, func() error {
			if !strings.Contains(errb.String(), `"msg":"started"`) {
				return fmt.Errorf("%s has not started: %s", role, errb.String())
			}
			return nil
		})
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("%s exit code %d", role, code)
		}
		if !strings.Contains(errb.String(), `:xxxxx@tcp(`) {
			t.Errorf("%s does not log where MySQL is: %s", role, errb.String())
		}
		f.check(t, role+"'s logs", out.String()+errb.String())
	}

	// Each role's --help with every secret set, and each role refused with
	// one wrong credential, print no secret either.
	for _, role := range []string{"dev", "gateway", "worker", "admin", "migrate", "token", "broker"} {
		_, o, e := runCmd(t, []string{role, "--help"}, f.vars)
		f.check(t, role+" --help", o+e)
	}
	for _, wrong := range []string{"FLASHGATE_REDIS_PASSWORD", "FLASHGATE_KAFKA_PASSWORD"} {
		vars := map[string]string{}
		for k, v := range f.vars {
			vars[k] = v
		}
		vars[wrong] = "wrong-" + vars[wrong]
		code, o, e := runCmd(t, []string{"gateway"}, vars)
		if code != 1 {
			t.Errorf("gateway with a wrong %s: exit %d", wrong, code)
		}
		f.check(t, "gateway with a wrong "+wrong, o+e)
	}
}
