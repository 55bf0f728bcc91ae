package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

func (s *Store) gatewaysKey() string { return s.prefix + ":gateways" }

// Heartbeat runs heartbeat.lua: it records that gateway id is alive and
// returns how many gateways are, itself included: those heard from within
// ttl, by Redis's clock.
func (s *Store) Heartbeat(ctx context.Context, id string, ttl time.Duration) (int, error) {
	n, err := s.exec(ctx, s.heartbeat, []string{s.gatewaysKey()}, []string{id, strconv.FormatInt(ttl.Milliseconds(), 10)}).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("heartbeat: %w", err)
	}
	return int(n), nil
}

// Leave removes gateway id from the live gateways at once, so that the
// others take over its share of the limits without waiting for its
// heartbeat to age out.
func (s *Store) Leave(ctx context.Context, id string) error {
	if err := s.c.Do(ctx, s.c.B().Zrem().Key(s.gatewaysKey()).Member(id).Build()).Error(); err != nil {
		return fmt.Errorf("leave the fleet: %w", err)
	}
	return nil
}
