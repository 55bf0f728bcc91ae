// Package kafka wraps segmentio/kafka-go for flashgate: the batching producer
// of reservations, the consumer-group reader of the workers, topic creation,
// and the embedded Kafka-protocol broker (franz-go's kfake) of dev mode and
// tests.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/rawnet"
)

// Message is a record to produce or a record consumed.
type Message = kafkago.Message

// EnsureTopic creates topic with partitions if it does not exist.
func EnsureTopic(ctx context.Context, sec Security, brokers []string, topic string, partitions int) error {
	d := sec.dialer(5 * time.Second)
	conn, err := d.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return fmt.Errorf("connect to kafka %s: %w", brokers[0], err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("find kafka controller: %w", err)
	}
	cc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("connect to kafka controller: %w", err)
	}
	defer cc.Close()
	err = cc.CreateTopics(kafkago.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: -1})
	if err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// Ping checks that a broker answers.
func Ping(ctx context.Context, sec Security, brokers []string) error {
	var last error
	d := sec.dialer(2 * time.Second)
	for _, b := range brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err != nil {
			last = err
			continue
		}
		_, err = conn.Brokers()
		conn.Close()
		if err == nil {
			return nil
		}
		last = err
	}
	return fmt.Errorf("kafka unreachable: %w", last)
}

// Broker is an embedded Kafka-protocol broker (franz-go's kfake): it keeps
// everything in memory and is for dev, local fleets and tests, never for
// production.
type Broker struct {
	c *kfake.Cluster
}

// BrokerOptions configure StartBrokerWith.
type BrokerOptions struct {
	// Addr is the listen address; default 127.0.0.1:0 (a free port).
	Addr string
	// Topic is created with Partitions partitions (default 8) at start.
	Topic      string
	Partitions int
	// SASL, when set (one of the SASL* constants), makes every client
	// authenticate as Username with Password.
	SASL     string
	Username string
	Password string
	// TLS, when set, is the server side of TLS (it must hold a certificate).
	TLS *tls.Config
}

// StartBroker starts a one-node embedded broker on a free loopback port with
// topic created.
func StartBroker(topic string, partitions int) (*Broker, error) {
	return StartBrokerWith(BrokerOptions{Topic: topic, Partitions: partitions})
}

// StartBrokerAt is StartBroker on a given address (fault tests restart a
// broker where clients expect it).
func StartBrokerAt(addr, topic string, partitions int) (*Broker, error) {
	return StartBrokerWith(BrokerOptions{Addr: addr, Topic: topic, Partitions: partitions})
}

// StartBrokerWith starts a one-node embedded broker as o says.
func StartBrokerWith(o BrokerOptions) (*Broker, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Partitions <= 0 {
		o.Partitions = 8
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			ln, err := net.Listen(network, o.Addr)
			if err != nil {
				return nil, err
			}
			return rawnet.Listener{Listener: ln}, nil
		}),
	}
	if o.Topic != "" {
		opts = append(opts, kfake.SeedTopics(int32(o.Partitions), o.Topic))
	}
	if o.SASL != "" {
		method, ok := map[string]string{SASLPlain: "PLAIN", SASLScramSHA256: "SCRAM-SHA-256", SASLScramSHA512: "SCRAM-SHA-512"}[o.SASL]
		if !ok {
			return nil, fmt.Errorf("start embedded kafka: unknown SASL mechanism %q", o.SASL)
		}
		if o.Username == "" || o.Password == "" {
			return nil, errors.New("start embedded kafka: SASL needs a username and a password")
		}
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(method, o.Username, o.Password))
	}
	if o.TLS != nil {
		opts = append(opts, kfake.TLS(o.TLS))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	return &Broker{c: c}, nil
}

// Addrs returns the broker's listen addresses.
func (b *Broker) Addrs() []string { return b.c.ListenAddrs() }

// Close stops the broker.
func (b *Broker) Close() { b.c.Close() }

// Producer batches messages to one topic. Enqueue never blocks a request:
// messages go into a bounded queue that background goroutines drain in
// batches with synchronous writes; a full queue drops the message, which is
// safe because every reservation also waits in a Redis outbox that the relay
// produces again.
type Producer struct {
	w       *kafkago.Writer
	log     *slog.Logger
	queue   chan queued
	batch   int
	linger  time.Duration
	wg      sync.WaitGroup
	closing chan struct{}
	once    sync.Once

	produced, failed, dropped atomic.Uint64
	writes                    atomic.Uint64
}

// queued is a message waiting for its batch. done, when set, receives the
// outcome of the write that carried it (nil once Kafka acknowledged it).
type queued struct {
	m    Message
	done chan error
}

// ProducerOptions configure NewProducer.
type ProducerOptions struct {
	Brokers []string
	Topic   string
	Logger  *slog.Logger
	Queue   int           // queued messages before Enqueue drops; default 65536
	Batch   int           // most messages a write carries; default 4096
	Linger  time.Duration // longest a message waits for its batch; default 1ms
	Writers int           // concurrent batch writers; default 2
	// Security authenticates and encrypts; the zero value is plaintext.
	Security Security
}

// NewProducer starts a producer.
func NewProducer(o ProducerOptions) *Producer {
	if o.Queue <= 0 {
		o.Queue = 65536
	}
	if o.Batch <= 0 {
		o.Batch = 4096
	}
	if o.Linger <= 0 {
		o.Linger = time.Millisecond
	}
	if o.Writers <= 0 {
		o.Writers = 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Producer{
		w: &kafkago.Writer{
			Addr:      kafkago.TCP(o.Brokers...),
			Transport: o.Security.transport(),
			Topic:     o.Topic,
			Balancer:  &kafkago.Hash{},
			// kafka-go preallocates BatchSize messages for every batch of
			// every partition: keep it small, our own queue does the
			// batching across partitions, and a flush of it gives each
			// partition a handful of messages at the rates one gateway
			// takes (a partition's share over BatchSize goes as one more
			// request of the same write).
			BatchSize:  64,
			BatchBytes: 16 << 20,
			// A synchronous write waits this long for its per-partition
			// batches to fill before sending them. Our own queue has
			// already gathered the batch (the linger above), so waiting
			// again would only add latency to every acknowledged buy.
			BatchTimeout: 50 * time.Microsecond,
			RequiredAcks: kafkago.RequireAll,
			MaxAttempts:  5,
			WriteTimeout: 5 * time.Second,
		},
		log:     o.Logger,
		queue:   make(chan queued, o.Queue),
		batch:   o.Batch,
		linger:  o.Linger,
		closing: make(chan struct{}),
	}
	for i := 0; i < o.Writers; i++ {
		p.wg.Add(1)
		go p.loop()
	}
	return p
}

// Enqueue queues a message without waiting; it reports false when the queue
// is full or the producer is closing.
func (p *Producer) Enqueue(m Message) bool {
	select {
	case <-p.closing:
		p.dropped.Add(reservations(m))
		return false
	default:
	}
	select {
	case p.queue <- queued{m: m}:
		return true
	default:
		p.dropped.Add(reservations(m))
		return false
	}
}

// ErrNotAcked is returned by Produce when the message was not acknowledged:
// the queue was full, the producer is closing, or ctx ended first (the
// message may still be written later).
var ErrNotAcked = errors.New("kafka did not acknowledge the message in time")

// Produce queues m like Enqueue, then waits until the batch that carries it
// is acknowledged by every in-sync replica (acks=all). Concurrent callers
// share batches, like a database's group commit: each pays at most the
// linger plus one produce round trip, and Kafka sees one request per batch.
// It never blocks on a full queue: that is ErrNotAcked at once.
func (p *Producer) Produce(ctx context.Context, m Message) error {
	done := make(chan error, 1)
	select {
	case <-p.closing:
		p.dropped.Add(reservations(m))
		return ErrNotAcked
	default:
	}
	select {
	case p.queue <- queued{m: m, done: done}:
	default:
		p.dropped.Add(reservations(m))
		return ErrNotAcked
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotAcked, ctx.Err())
	}
}

// Write produces msgs synchronously (the relay uses it).
func (p *Producer) Write(ctx context.Context, msgs ...Message) error {
	p.writes.Add(1)
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		p.failed.Add(reservations(msgs...))
		return fmt.Errorf("produce: %w", err)
	}
	p.produced.Add(reservations(msgs...))
	return nil
}

// reservations counts the reservations msgs carry: a message holds those of
// one reserve call, one a line (flashgate.ParseEntry).
func reservations(msgs ...Message) uint64 {
	n := 0
	for i := range msgs {
		n += flashgate.EntryLen(msgs[i].Value)
	}
	return uint64(n)
}

// Writes returns how many synchronous writes (produce batches) were made.
func (p *Producer) Writes() uint64 { return p.writes.Load() }

// Stats returns counters: reservations produced, failed and dropped.
func (p *Producer) Stats() (produced, failed, dropped uint64) {
	return p.produced.Load(), p.failed.Load(), p.dropped.Load()
}

func (p *Producer) loop() {
	defer p.wg.Done()
	buf := make([]queued, 0, p.batch)
	for {
		var m queued
		select {
		case m = <-p.queue:
		case <-p.closing:
			// Drain what is queued, then stop.
			for {
				select {
				case m = <-p.queue:
					buf = append(buf, m)
					if len(buf) == p.batch {
						p.flush(buf)
						buf = buf[:0]
					}
				default:
					p.flush(buf)
					return
				}
			}
		}
		buf = append(buf[:0], m)
		deadline := time.NewTimer(p.linger)
	fill:
		for len(buf) < p.batch {
			select {
			case m = <-p.queue:
				buf = append(buf, m)
			case <-deadline.C:
				break fill
			}
		}
		deadline.Stop()
		p.flush(buf)
		buf = buf[:0]
	}
}

func (p *Producer) flush(buf []queued) {
	if len(buf) == 0 {
		return
	}
	msgs := make([]Message, len(buf))
	for i := range buf {
		msgs[i] = buf[i].m
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.Write(ctx, msgs...)
	if err != nil {
		// The outbox relay produces these again.
		p.log.Warn("produce batch failed; the relay will retry", "messages", len(buf), "err", err)
		err = fmt.Errorf("%w: %w", ErrNotAcked, err)
	}
	for i := range buf {
		if buf[i].done != nil {
			buf[i].done <- err // buffered: never blocks, even if the waiter left
		}
	}
}

// Close flushes what is queued and closes the writer.
func (p *Producer) Close() error {
	p.once.Do(func() { close(p.closing) })
	p.wg.Wait()
	err := p.w.Close()
	// The writer closes only a transport it made itself.
	if t, ok := p.w.Transport.(*kafkago.Transport); ok {
		t.CloseIdleConnections()
	}
	return err
}

// Consumer reads a topic as a member of a consumer group.
type Consumer struct {
	cfg kafkago.ReaderConfig
	r   *kafkago.Reader
	// pastEnd is an ErrPastEnd met while a batch filled: the next
	// FetchBatch returns it.
	pastEnd error
}

// ErrPastEnd is returned by FetchBatch when the reader of a partition found
// its offset past the partition's end, and the consumer joined its group
// again (see Consumer.fetch).
var ErrPastEnd = errors.New("a partition's offset lies past its end, on a log that is gone: joined the group again")

// ConsumerOptions configure NewConsumer.
type ConsumerOptions struct {
	Brokers []string
	Topic   string
	Group   string
	// Security authenticates and encrypts; the zero value is plaintext.
	Security Security
}

// NewConsumer joins a consumer group on a topic.
func NewConsumer(o ConsumerOptions) *Consumer {
	cfg := readerConfig(o)
	return &Consumer{cfg: cfg, r: kafkago.NewReader(cfg)}
}

// readerConfig is a group member's reader as o says.
func readerConfig(o ConsumerOptions) kafkago.ReaderConfig {
	return kafkago.ReaderConfig{
		Brokers:           o.Brokers,
		Topic:             o.Topic,
		GroupID:           o.Group,
		Dialer:            o.Security.dialer(10 * time.Second),
		MinBytes:          1,
		MaxBytes:          16 << 20,
		MaxWait:           100 * time.Millisecond,
		ReadBatchTimeout:  100 * time.Millisecond,
		CommitInterval:    0, // commits are explicit and synchronous
		StartOffset:       kafkago.FirstOffset,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  3 * time.Second,
		QueueCapacity:     4096,
		// A partition's reader that starts past the partition's end
		// reports it (Consumer.fetch) rather than waiting there.
		OffsetOutOfRangeError: true,
	}
}

// FetchBatch waits for one message, then takes up to max-1 more that arrive
// within linger.
func (c *Consumer) FetchBatch(ctx context.Context, max int, linger time.Duration) ([]Message, error) {
	if err := c.pastEnd; err != nil {
		c.pastEnd = nil
		return nil, err
	}
	m, err := c.fetch(ctx)
	if err != nil {
		return nil, err
	}
	out := []Message{m}
	lctx, cancel := context.WithTimeout(ctx, linger)
	defer cancel()
	for len(out) < max {
		m, err := c.fetch(lctx)
		if err != nil {
			if errors.Is(err, ErrPastEnd) {
				c.pastEnd = err
			}
			break
		}
		out = append(out, m)
	}
	return out, nil
}

// fetch returns the next message. kafka-go's reader of a partition whose
// offset lies past the partition's end would wait for the log to grow past
// it, reading nothing of what the partition holds meanwhile; it reports
// OffsetOutOfRange instead (readerConfig) and stops reading that partition.
// Such an offset was committed on a log that is gone, such as an embedded
// broker's after a restart: a member that read a batch before the restart
// commits it as the group forms on the new broker, and a member that
// fetched the group's offsets just then starts there, even when a commit
// of the new log's offsets follows at once and hides it (LagMeter.Measure
// then finds nothing stranded). Leaving and joining the group again makes
// every member start from the group's offsets as they are now; when those
// lie past the end themselves, the workers' rewind (RewindStranded) moves
// them back, and until then the consumer keeps joining again.
func (c *Consumer) fetch(ctx context.Context) (Message, error) {
	m, err := c.r.FetchMessage(ctx)
	if !errors.Is(err, kafkago.OffsetOutOfRange) {
		return m, err
	}
	cerr := c.r.Close()
	c.r = kafkago.NewReader(c.cfg)
	return m, errors.Join(fmt.Errorf("%w: %w", ErrPastEnd, err), cerr)
}

// Commit commits the offsets of msgs.
func (c *Consumer) Commit(ctx context.Context, msgs []Message) error {
	if err := c.r.CommitMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("commit offsets: %w", err)
	}
	return nil
}

// Close leaves the group.
func (c *Consumer) Close() error { return c.r.Close() }
