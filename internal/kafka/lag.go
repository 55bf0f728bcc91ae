package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// LagMeter measures the lag of a consumer group on a topic: how many
// messages it has not committed yet, summed over the topic's partitions. It
// is what a Kafka exporter reports as the consumer group lag, measured from
// inside so that a fleet without one still sees its workers fall behind. It
// keeps its connections between measurements; Close releases them.
type LagMeter struct {
	c            *kafkago.Client
	t            *kafkago.Transport
	topic, group string
}

// NewLagMeter returns a meter of group's lag on topic.
func NewLagMeter(sec Security, brokers []string, topic, group string) *LagMeter {
	t := sec.transport()
	return &LagMeter{c: &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 5 * time.Second, Transport: t}, t: t, topic: topic, group: group}
}

// Close closes the meter's idle connections.
func (l *LagMeter) Close() { l.t.CloseIdleConnections() }

// GroupLag measures a group's lag once (see LagMeter).
func GroupLag(ctx context.Context, sec Security, brokers []string, topic, group string) (int64, error) {
	l := NewLagMeter(sec, brokers, topic, group)
	defer l.Close()
	return l.Lag(ctx)
}

// Lag returns the lag now: for each partition, its end offset minus the
// group's committed offset (or minus its first offset when the group never
// committed there).
func (l *LagMeter) Lag(ctx context.Context) (int64, error) {
	lag, _, err := l.Measure(ctx)
	return lag, err
}

// Measure returns the lag now (see Lag) and the partitions where the
// group's committed offset lies past the partition's end, each with the
// partition's first offset. A log only grows, so such an offset was
// committed on a log that is gone (a broker that kept its log in memory
// and restarted, a topic made again, an unclean leader election): the
// group's readers would wait there until the new log grows past it, and
// not read what it holds meanwhile. RewindStranded moves them back.
func (l *LagMeter) Measure(ctx context.Context) (lag int64, stranded map[int]int64, err error) {
	c, topic, group := l.c, l.topic, l.group
	md, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, nil, fmt.Errorf("kafka lag: metadata: %w", err)
	}
	var ids []int
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return 0, nil, fmt.Errorf("kafka lag: topic %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return 0, nil, fmt.Errorf("kafka lag: topic %s has no partitions", topic)
	}
	reqs := make([]kafkago.OffsetRequest, 0, 2*len(ids))
	for _, id := range ids {
		reqs = append(reqs, kafkago.FirstOffsetOf(id), kafkago.LastOffsetOf(id))
	}
	ends, err := c.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
	if err != nil {
		return 0, nil, fmt.Errorf("kafka lag: list offsets: %w", err)
	}
	committed, err := c.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		return 0, nil, fmt.Errorf("kafka lag: committed offsets of %s: %w", group, err)
	}
	if committed.Error != nil && !errors.Is(committed.Error, kafkago.GroupIdNotFound) {
		// A group that never joined has committed nothing: its lag is the
		// whole topic.
		return 0, nil, fmt.Errorf("kafka lag: committed offsets of %s: %w", group, committed.Error)
	}
	done := map[int]int64{}
	for _, p := range committed.Topics[topic] {
		if p.Error != nil {
			return 0, nil, fmt.Errorf("kafka lag: committed offset of partition %d: %w", p.Partition, p.Error)
		}
		done[p.Partition] = p.CommittedOffset
	}
	for _, p := range ends.Topics[topic] {
		if p.Error != nil {
			return 0, nil, fmt.Errorf("kafka lag: offsets of partition %d: %w", p.Partition, p.Error)
		}
		from, ok := done[p.Partition]
		if ok && from > p.LastOffset {
			if stranded == nil {
				stranded = map[int]int64{}
			}
			stranded[p.Partition] = p.FirstOffset
		}
		if !ok || from < p.FirstOffset || from > p.LastOffset {
			from = p.FirstOffset // never committed, committed before retention, or stranded
		}
		if n := p.LastOffset - from; n > 0 {
			lag += n
		}
	}
	return lag, stranded, nil
}

// RewindStranded commits, for each partition p of to, the offset to[p] as
// group's offset on topic, then leaves the group: it joins as a member
// (a member of the current generation may commit any partition's offset),
// and its leaving makes every member join again and read the committed
// offsets afresh. Reading again from a log's first offset is what a
// consumer does with a log it never read; flashgate's workers write what
// they read idempotently.
func RewindStranded(ctx context.Context, sec Security, brokers []string, topic, group string, to map[int]int64) error {
	r := kafkago.NewReader(readerConfig(ConsumerOptions{Brokers: brokers, Topic: topic, Group: group, Security: sec}))
	msgs := make([]kafkago.Message, 0, len(to))
	for p, first := range to {
		msgs = append(msgs, kafkago.Message{Topic: topic, Partition: p, Offset: first - 1}) // commits first
	}
	err := r.CommitMessages(ctx, msgs...)
	if cerr := r.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("rewind stranded offsets of %s: %w", group, err)
	}
	return nil
}
