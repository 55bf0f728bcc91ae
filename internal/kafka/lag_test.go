package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/kafka"
)

// TestGroupLag checks the lag against what was produced and committed: all
// of it before the group commits anything, the rest after part is
// committed, none once everything is.
func TestGroupLag(t *testing.T) {
	b, err := kafka.StartBroker("lag", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopic(ctx, kafka.Security{}, b.Addrs(), "lag", 3); err != nil {
		t.Fatal(err)
	}
	const n = 300
	produce(t, b.Addrs(), "lag", "", n)
	// One meter for every measurement, as a worker keeps it.
	m := kafka.NewLagMeter(kafka.Security{}, b.Addrs(), "lag", "g")
	defer m.Close()
	lag := func() int64 {
		t.Helper()
		l, err := m.Lag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if got := lag(); got != n {
		t.Fatalf("lag before any commit = %d, want %d", got, n)
	}
	c := kafka.NewConsumer(kafka.ConsumerOptions{Brokers: b.Addrs(), Topic: "lag", Group: "g"})
	defer c.Close()
	msgs, err := c.FetchBatch(ctx, 100, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	// A commit covers every offset up to the highest committed in its
	// partition, so the lag is what lies past those.
	if got := lag(); got >= n || got <= 0 {
		t.Fatalf("lag after committing %d of %d = %d", len(msgs), n, got)
	}
	for done := len(msgs); done < n; {
		msgs, err := c.FetchBatch(ctx, 500, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Commit(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		done += len(msgs)
	}
	if got := lag(); got != 0 {
		t.Fatalf("lag after committing everything = %d", got)
	}
	if _, err := kafka.GroupLag(ctx, kafka.Security{}, b.Addrs(), "no-such-topic", "g"); err == nil {
		t.Fatal("lag of a missing topic: no error")
	}
}

// TestRewindStranded: a broker that restarts without its log, and a batch
// read before the restart whose commit lands after it (the worker retries
// a commit until it succeeds), leave the group's offsets past the new
// log's end. A reader of the group then starts there and reads none of
// what the new log holds (it reports ErrPastEnd, and joining again starts
// it there again). Measure names those partitions, and RewindStranded
// brings every reader of the group back to their first offset.
func TestRewindStranded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	const topic, parts = "stranded", 2
	b, err := kafka.StartBrokerAt(addr, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	produce(t, []string{addr}, topic, "old", 40)
	c := kafka.NewConsumer(kafka.ConsumerOptions{Brokers: []string{addr}, Topic: topic, Group: "g"})
	var old []kafka.Message
	for len(old) < 40 {
		msgs, err := c.FetchBatch(ctx, 40, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, msgs...)
	}
	if err := c.Commit(ctx, old); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b, err = kafka.StartBrokerAt(addr, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The batch's commit again, once the group has joined the new broker.
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.Commit(cctx, old)
		ccancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("commit on the new broker: %v", err)
		}
	}
	c.Close()
	produce(t, []string{addr}, topic, "new", 6)
	c = kafka.NewConsumer(kafka.ConsumerOptions{Brokers: []string{addr}, Topic: topic, Group: "g"})
	defer c.Close()
	wait, wcancel := context.WithTimeout(ctx, 3*time.Second)
	if msgs, err := c.FetchBatch(wait, 10, 10*time.Millisecond); err == nil {
		t.Fatalf("a reader of stranded offsets read %d messages (the stranded state was not made)", len(msgs))
	}
	wcancel()
	m := kafka.NewLagMeter(kafka.Security{}, []string{addr}, topic, "g")
	defer m.Close()
	lag, stranded, err := m.Measure(ctx)
	if err != nil || len(stranded) != parts || lag != 6 {
		t.Fatalf("measure: lag %d, stranded %v, %v; want lag 6 and %d partitions stranded", lag, stranded, err, parts)
	}
	for p, first := range stranded {
		if first != 0 {
			t.Errorf("partition %d: rewind to %d, want 0", p, first)
		}
	}
	if err := kafka.RewindStranded(ctx, kafka.Security{}, []string{addr}, topic, "g", stranded); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 6 {
		msgs, err := c.FetchBatch(ctx, 10, 10*time.Millisecond)
		if errors.Is(err, kafka.ErrPastEnd) {
			continue // reported before the rewind: the consumer joined again
		}
		if err != nil {
			t.Fatalf("after the rewind, %d of 6 new messages read: %v", len(got), err)
		}
		for _, m := range msgs {
			got = append(got, string(m.Value))
		}
	}
	for _, v := range got {
		if !strings.HasPrefix(v, "new") {
			t.Fatalf("read %q after the rewind: not of the new log", v)
		}
	}
	if _, stranded, err := m.Measure(ctx); err != nil || len(stranded) != 0 {
		t.Fatalf("after the rewind: stranded %v, %v", stranded, err)
	}
}

// TestReaderPastEnd: the other state a broker that restarts without its
// log leaves (docs/operations.md, "Known flake"). A batch read before the
// restart is committed as the group forms on the new broker, and a member
// that fetched the group's offsets just then starts past the new log's
// end; a commit of the new log's offsets by the partition's previous
// reader follows at once. The group's offsets then lie within their
// partitions, so Measure finds nothing stranded, while that member's reader
// waited past the end and read nothing more of the partition until the log
// grew that far. The reader must read on from the group's offset.
func TestReaderPastEnd(t *testing.T) {
	const topic = "pastend"
	b, err := kafka.StartBroker(topic, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	produce(t, b.Addrs(), topic, "a", 5)
	// The old batch's commit: offset 100 of a log of 5.
	old := kafka.NewConsumer(kafka.ConsumerOptions{Brokers: b.Addrs(), Topic: topic, Group: "g"})
	if err := old.Commit(ctx, []kafka.Message{{Topic: topic, Partition: 0, Offset: 99}}); err != nil {
		t.Fatal(err)
	}
	old.Close()
	// The member joins and its reader starts at 100; then the previous
	// reader's commit of a3 (a commit request waits for the member's
	// generation, which starts after its offsets are fetched).
	c := kafka.NewConsumer(kafka.ConsumerOptions{Brokers: b.Addrs(), Topic: topic, Group: "g"})
	defer c.Close()
	if err := c.Commit(ctx, []kafka.Message{{Topic: topic, Partition: 0, Offset: 2}}); err != nil {
		t.Fatal(err)
	}
	m := kafka.NewLagMeter(kafka.Security{}, b.Addrs(), topic, "g")
	defer m.Close()
	if lag, stranded, err := m.Measure(ctx); err != nil || len(stranded) != 0 || lag != 2 {
		t.Fatalf("measure: lag %d, stranded %v, %v; want lag 2 and nothing stranded", lag, stranded, err)
	}
	produce(t, b.Addrs(), topic, "b", 2)
	// The member reads on from the group's offset 3: offsets 3 and 4 of the
	// first five, then the two new ones. Offsets, not values: the producer's
	// two writers may append one batch before another queued ahead of it.
	want := []string{"3", "4", "5", "6"}
	var got []string
	wait, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	for len(got) < len(want) {
		msgs, err := c.FetchBatch(wait, 10, 10*time.Millisecond)
		if errors.Is(err, kafka.ErrPastEnd) {
			continue
		}
		if err != nil {
			t.Fatalf("read %v of %v: %v", got, want, err)
		}
		for _, m := range msgs {
			got = append(got, fmt.Sprint(m.Offset))
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("read offsets %v, want %v", got, want)
	}
}

// produce writes n messages to topic and waits until the broker has them:
// message i has key i and value tag followed by i.
func produce(t *testing.T, brokers []string, topic, tag string, n int) {
	t.Helper()
	p := kafka.NewProducer(kafka.ProducerOptions{Brokers: brokers, Topic: topic})
	for i := 0; i < n; i++ {
		if !p.Enqueue(kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(tag + fmt.Sprint(i))}) {
			t.Fatal("enqueue refused")
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}
