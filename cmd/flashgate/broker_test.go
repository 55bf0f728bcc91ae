package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/testenv"
)

// startBroker runs `flashgate broker` through run() on a free port and
// returns its address and a stop function that checks it exits 0.
func startBroker(t *testing.T, args []string, vars map[string]string) (addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"broker", "--addr", "127.0.0.1:0"}, args...), env(vars), out, errb)
	}()
	listening := regexp.MustCompile(`listening on (\S+)\n`)
	testenv.Eventually(t, 10*time.Second, func() error {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
			return nil
		}
		select {
		case code := <-done:
			t.Fatalf("broker exited %d: %s", code, errb.String())
		default:
		}
		return errors.New("broker not listening yet")
	})
	return addr, func() {
		t.Helper()
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("broker exit code %d: %s", code, errb.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("broker did not stop")
		}
	}
}

// roundTrip produces n messages through the broker with the flashgate
// producer, reads them back with a consumer group, and checks every one
// arrived; the topic must already exist with the partitions flashgate uses.
func roundTrip(t *testing.T, addr, topic string, sec kafka.Security, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.Ping(ctx, sec, []string{addr}); err != nil {
		t.Fatalf("ping: %v", err)
	}
	// The topic is there already; asking again is what every role does.
	if err := kafka.EnsureTopic(ctx, sec, []string{addr}, topic, 8); err != nil {
		t.Fatalf("ensure topic: %v", err)
	}
	p := kafka.NewProducer(kafka.ProducerOptions{Brokers: []string{addr}, Topic: topic, Security: sec})
	if err := p.Write(ctx, kafka.Message{Key: []byte("k"), Value: []byte("first")}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for i := 1; i < n; i++ {
		if !p.Enqueue(kafka.Message{Key: []byte(fmt.Sprint(i % 13)), Value: []byte(fmt.Sprint(i))}) {
			t.Fatal("enqueue refused")
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if produced, failed, _ := p.Stats(); produced != uint64(n) || failed != 0 {
		t.Fatalf("produced %d, failed %d", produced, failed)
	}
	c := kafka.NewConsumer(kafka.ConsumerOptions{Brokers: []string{addr}, Topic: topic, Group: "roundtrip", Security: sec})
	defer c.Close()
	seen := map[string]bool{}
	partitions := map[int]bool{}
	for len(seen) < n {
		msgs, err := c.FetchBatch(ctx, 500, 20*time.Millisecond)
		if err != nil {
			t.Fatalf("consume after %d of %d: %v", len(seen), n, err)
		}
		for _, m := range msgs {
			seen[string(m.Value)] = true
			partitions[m.Partition] = true
		}
		if err := c.Commit(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	if len(partitions) < 2 {
		t.Errorf("messages on %d partition(s): the topic was not created with flashgate's partitions", len(partitions))
	}
}

func TestBrokerServesAndStops(t *testing.T) {
	addr, stop := startBroker(t, nil, map[string]string{"FLASHGATE_KAFKA_PARTITIONS": "4", "FLASHGATE_KAFKA_TOPIC": "fleet.reservations"})
	defer stop()
	roundTrip(t, addr, "fleet.reservations", kafka.Security{}, 300)
}

// A broker started with SASL SCRAM and TLS refuses a wrong password and a
// plaintext client, and carries messages for the right credentials over TLS.
func TestBrokerWithSASLAndTLS(t *testing.T) {
	files := testenv.NewTLSFiles(t)
	for _, mech := range []string{kafka.SASLPlain, kafka.SASLScramSHA256, kafka.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			vars := map[string]string{
				"FLASHGATE_KAFKA_SASL":     mech,
				"FLASHGATE_KAFKA_USERNAME": "fleet",
				"FLASHGATE_KAFKA_PASSWORD": "kafka-password-" + mech,
			}
			addr, stop := startBroker(t, []string{"--tls-cert", files.Cert, "--tls-key", files.Key}, vars)
			defer stop()
			clientTLS, err := config.ClientTLS(files.CA)
			if err != nil {
				t.Fatal(err)
			}
			good, err := kafka.NewSecurity(mech, "fleet", "kafka-password-"+mech, clientTLS)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, addr, "flashgate.reservations", good, 50)

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			wrong, _ := kafka.NewSecurity(mech, "fleet", "not-the-password", clientTLS)
			if err := kafka.Ping(ctx, wrong, []string{addr}); err == nil {
				t.Error("a wrong password was accepted")
			}
			plain, _ := kafka.NewSecurity(mech, "fleet", "kafka-password-"+mech, nil)
			if err := kafka.Ping(ctx, plain, []string{addr}); err == nil {
				t.Error("a plaintext client was accepted by a TLS broker")
			}
		})
	}
}

func TestBrokerBadUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		vars map[string]string
		want string
	}{
		{[]string{"broker", "--addr", "nonsense"}, nil, "--addr"},
		{[]string{"broker", "--tls-cert", "/nonexistent"}, nil, "--tls-cert"},
		{[]string{"broker"}, map[string]string{"FLASHGATE_KAFKA_PARTITIONS": "0"}, "FLASHGATE_KAFKA_PARTITIONS"},
		{[]string{"broker"}, map[string]string{"FLASHGATE_KAFKA_SASL": "scram-sha-1", "FLASHGATE_KAFKA_USERNAME": "u", "FLASHGATE_KAFKA_PASSWORD": "a-broker-secret"}, "FLASHGATE_KAFKA_SASL"},
		{[]string{"broker"}, map[string]string{"FLASHGATE_KAFKA_SASL": "plain", "FLASHGATE_KAFKA_USERNAME": "u"}, "FLASHGATE_KAFKA_PASSWORD"},
	} {
		code, _, stderr := runCmd(t, c.args, c.vars)
		if code == 0 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "a-broker-secret") {
			t.Errorf("%v %v: exit %d, stderr %q", c.args, c.vars, code, stderr)
		}
	}
}
