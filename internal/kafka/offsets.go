package kafka

import (
	"context"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// EndOffsets returns, per partition of topic, the offset the next message
// will get: every message produced so far lies below it.
func EndOffsets(ctx context.Context, sec Security, brokers []string, topic string) (map[int]int64, error) {
	t := sec.transport()
	defer t.CloseIdleConnections()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second, Transport: t}
	md, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s: %w", topic, err)
	}
	var reqs []kafkago.OffsetRequest
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("read metadata of %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			reqs = append(reqs, kafkago.LastOffsetOf(p.ID))
		}
	}
	res, err := c.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.LastOffset
	}
	return out, nil
}

// CaughtUp reports whether group has committed, on every partition, at
// least the offsets in end: every message below them has been handled.
func CaughtUp(ctx context.Context, sec Security, brokers []string, topic, group string, end map[int]int64) (bool, error) {
	t := sec.transport()
	defer t.CloseIdleConnections()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second, Transport: t}
	parts := make([]int, 0, len(end))
	for p, off := range end {
		if off > 0 {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return true, nil
	}
	res, err := c.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return false, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	if res.Error != nil {
		return false, fmt.Errorf("fetch offsets of group %s: %w", group, res.Error)
	}
	got := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return false, fmt.Errorf("fetch offsets of group %s: %w", group, p.Error)
		}
		got[p.Partition] = p.CommittedOffset
	}
	for _, p := range parts {
		if got[p] < end[p] {
			return false, nil
		}
	}
	return true, nil
}
