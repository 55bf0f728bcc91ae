package test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/testenv"
)

// TestKcatReadsTheTopic: a standard Kafka client (Debian's kcat, on
// librdkafka) reads the reservations topic of the embedded broker, and a
// buy's message is as docs/api.md describes it: the value is the
// reservation's wire form, the key flashgate.EntryKey of its order id.
func TestKcatReadsTheTopic(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is required for this test: run scripts/services.sh (apt-get install kcat)")
	}
	s := start(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 5, "shards": 1})
	order := s.buyOrder(item, 42)
	testenv.Eventually(t, 20*time.Second, func() error {
		// -e: exit at the end of every partition; -J: each message as a
		// JSON object, its key and value as strings.
		cmd := exec.Command(kcat, "-b", strings.Join(s.app.Brokers, ","), "-t", s.app.Config.KafkaTopic, "-C", "-e", "-q", "-J")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("kcat: %v: %s", err, out)
		}
		for line := range strings.Lines(string(out)) {
			var m struct {
				Key     *string `json:"key"`
				Payload *string `json:"payload"`
			}
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				return fmt.Errorf("kcat printed %q: %v", line, err)
			}
			if m.Payload == nil || !strings.Contains(*m.Payload, order) {
				continue
			}
			rs, err := flashgate.ParseEntry([]byte(*m.Payload))
			if err != nil || len(rs) != 1 {
				t.Fatalf("the buy's message %q: %d reservations, %v", *m.Payload, len(rs), err)
			}
			if r := rs[0]; r.OrderID != order || r.ItemID != item || r.UserID != 42 {
				t.Fatalf("the buy's message holds %+v", r)
			}
			if want := string(flashgate.EntryKey(order)); m.Key == nil || *m.Key != want {
				t.Fatalf("the buy's message is keyed %s, want %q", quoted(m.Key), want)
			}
			return nil
		}
		return fmt.Errorf("no message for order %s among %d lines", order, strings.Count(string(out), "\n"))
	})
}

// quoted is *s quoted, or "no key" for nil.
func quoted(s *string) string {
	if s == nil {
		return "no key"
	}
	return fmt.Sprintf("%q", *s)
}
