package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/kafka"
)

func TestProduceConsumeGroup(t *testing.T) {
	b, err := kafka.StartBroker("t1", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.Ping(ctx, kafka.Security{}, b.Addrs()); err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureTopic(ctx, kafka.Security{}, b.Addrs(), "t1", 4); err != nil {
		t.Fatal(err)
	}
	p := kafka.NewProducer(kafka.ProducerOptions{Brokers: b.Addrs(), Topic: "t1"})
	const n = 2000
	for i := 0; i < n; i++ {
		v := fmt.Sprint(i)
		if i%10 == 0 { // a reserve call's three reservations, one a line
			v = fmt.Sprintf("%d\n%d\n%d", i, i, i)
		}
		if !p.Enqueue(kafka.Message{Key: []byte(fmt.Sprint(i % 97)), Value: []byte(v)}) {
			t.Fatal("enqueue refused")
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got, failed, _ := p.Stats(); got != n+2*n/10 || failed != 0 {
		t.Fatalf("produced %d reservations, want %d; failed %d", got, n+2*n/10, failed)
	}
	c := kafka.NewConsumer(kafka.ConsumerOptions{Brokers: b.Addrs(), Topic: "t1", Group: "g1"})
	defer c.Close()
	seen := map[string]bool{}
	for len(seen) < n {
		msgs, err := c.FetchBatch(ctx, 500, 20*time.Millisecond)
		if err != nil {
			t.Fatalf("fetch after %d: %v", len(seen), err)
		}
		for _, m := range msgs {
			seen[string(m.Value)] = true
		}
		if err := c.Commit(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
}

// TestProduceWaitsForAckInBatches: concurrent Produce calls all return
// once acknowledged, and share produce requests (group commit).
func TestProduceWaitsForAckInBatches(t *testing.T) {
	b, err := kafka.StartBroker("t2", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopic(ctx, kafka.Security{}, b.Addrs(), "t2", 4); err != nil {
		t.Fatal(err)
	}
	p := kafka.NewProducer(kafka.ProducerOptions{Brokers: b.Addrs(), Topic: "t2", Linger: 2 * time.Millisecond})
	defer p.Close()
	const n = 400
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			errs <- p.Produce(ctx, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	if got, _, _ := p.Stats(); got != n {
		t.Fatalf("acknowledged %d, produced %d", n, got)
	}
	if w := p.Writes(); w >= n/4 {
		t.Fatalf("%d writes for %d messages: not batched", w, n)
	}
}

// TestProduceWithoutBrokerIsNotAcked: with the broker gone, Produce reports
// ErrNotAcked when its context ends, never success.
func TestProduceWithoutBrokerIsNotAcked(t *testing.T) {
	b, err := kafka.StartBroker("t3", 1)
	if err != nil {
		t.Fatal(err)
	}
	addrs := b.Addrs()
	b.Close()
	p := kafka.NewProducer(kafka.ProducerOptions{Brokers: addrs, Topic: "t3"})
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err = p.Produce(ctx, kafka.Message{Value: []byte("x")})
	if !errors.Is(err, kafka.ErrNotAcked) {
		t.Fatalf("produce without broker: %v", err)
	}
}

// BenchmarkProduceAck is what FLASHGATE_ACK=kafka adds to a buy: Produce
// from 256 concurrent callers against the in-process broker, each waiting
// for its batch's acknowledgement. It reports the writes per message (the
// group commit's sharing).
func BenchmarkProduceAck(b *testing.B) {
	br, err := kafka.StartBroker("bench", benchPartitions)
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	ctx := context.Background()
	if err := kafka.EnsureTopic(ctx, kafka.Security{}, br.Addrs(), "bench", benchPartitions); err != nil {
		b.Fatal(err)
	}
	p := kafka.NewProducer(kafka.ProducerOptions{Brokers: br.Addrs(), Topic: "bench"})
	defer p.Close()
	value := []byte("r1|01M8MMFM6ASD766MYA3DS6B3ZH-1|1|123456|990|3|1795987369000")
	b.SetParallelism(128) // × GOMAXPROCS callers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if err := p.Produce(ctx, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: value}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(p.Writes())/float64(b.N), "writes/msg")
}

// benchPartitions is the topic of BenchmarkProduceAck: flashgate's default.
const benchPartitions = 8

// TestWriteOfOneWindowIsOneRequest: the reserve calls' entries one gateway
// makes within a window (flashgate.EntryKey) go to Kafka in one produce
// request for one partition, whatever their first users; entries of other
// windows go to other partitions.
func TestWriteOfOneWindowIsOneRequest(t *testing.T) {
	b, err := kafka.StartBroker("t4", 8)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var mu sync.Mutex
	var requests int
	partitions := map[int32]bool{}
	b.Cluster().ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		requests++
		for _, topic := range r.(*kmsg.ProduceRequest).Topics {
			for _, p := range topic.Partitions {
				partitions[p.Partition] = true
			}
		}
		return nil, nil, false // observed, then handled as usual
	})
	seen := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		n, p := requests, len(partitions)
		requests = 0
		clear(partitions)
		return n, p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := kafka.NewProducer(kafka.ProducerOptions{Brokers: b.Addrs(), Topic: "t4"})
	defer p.Close()
	ids := flashgate.NewOrderIDs()
	at := time.UnixMilli(time.Now().UnixMilli() &^ 127) // a window's first millisecond
	entries := func(step time.Duration) []kafka.Message {
		msgs := make([]kafka.Message, 40)
		for i := range msgs {
			id := string(ids.Append(nil, int64(i+1), at.Add(time.Duration(i)*step)))
			msgs[i] = kafka.Message{Key: flashgate.EntryKey(id), Value: []byte(id)}
		}
		return msgs
	}
	if err := p.Write(ctx, entries(time.Millisecond)...); err != nil { // 40 ms: one window
		t.Fatal(err)
	}
	if n, parts := seen(); n != 1 || parts != 1 {
		t.Errorf("40 entries of one window: %d produce requests for %d partitions, want 1 for 1", n, parts)
	}
	if err := p.Write(ctx, entries(128*time.Millisecond)...); err != nil { // 40 windows
		t.Fatal(err)
	}
	if _, parts := seen(); parts < 6 {
		t.Errorf("40 entries of 40 windows: %d partitions of 8", parts)
	}
}
