package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// ErrFenced is returned (wrapped) by every call that would change a shard
// that awaits repair: Redis restarted, or another process took over, since
// the shard was last verified, so its state may be older than what MySQL and
// Kafka know (docs/design.md, "Redis rewinds").
var ErrFenced = errors.New("shard awaits repair after a Redis restart")

// fenced turns the scripts' FENCED error into ErrFenced.
func fenced(err error) error {
	if err != nil && strings.Contains(err.Error(), "FENCED") {
		return ErrFenced
	}
	return err
}

// fencedBy returns the run ids named by a FENCED error: the Redis process
// that last verified the shard, and the one that refused it.
func fencedBy(err error) (verified, current string, ok bool) {
	if err == nil {
		return "", "", false
	}
	msg := err.Error()
	i := strings.Index(msg, "FENCED ")
	if i < 0 {
		return "", "", false
	}
	f := strings.Fields(msg[i+len("FENCED "):])
	if len(f) < 2 {
		return "", "", false
	}
	return f[0], f[1], true
}

// liveRuns caches the run ids of the Redis nodes that are up, to tell a
// shard whose slot migrated (verified by a node still up) from one that
// Redis rewound (verified by a process that is gone).
type liveRuns struct {
	mu   sync.Mutex
	at   time.Time
	runs map[string]bool
}

// migrated reports whether the processes verified and current were up at
// the same time, as two nodes: then the shard's slot moved from one to the
// other, and its keys are as they were. A node restarted since the nodes
// were read has a run id they do not show, so they are read again; a
// verified process they do not show is looked for again at most every
// 250ms. Never true for a restarted Redis: the process that verified the
// shard and the one running now were never up at once.
func (l *liveRuns) migrated(ctx context.Context, c rueidis.Client, verified, current string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.runs[current] && l.runs[verified] {
		return true
	}
	if l.runs[current] && time.Since(l.at) < 250*time.Millisecond {
		return false
	}
	l.at = time.Now()
	runs := map[string]bool{}
	for _, node := range c.Nodes() {
		info, err := node.Do(ctx, node.B().Info().Section("server").Build()).ToString()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
				runs[v] = true
			}
		}
	}
	l.runs = runs
	return runs[current] && runs[verified]
}

// Probe reports whether a shard is fenced.
func (s *Store) Probe(ctx context.Context, item int64, shard int) (bool, error) {
	err := fenced(s.exec(ctx, s.probe, []string{s.shardKey(item, shard, "stock"), s.shardKey(item, shard, "ep")}, nil).Error())
	if errors.Is(err, ErrFenced) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("probe item %d shard %d: %w", item, shard, err)
	}
	return false, nil
}

// Fence makes a shard refuse every change until Unfence. One command, so
// that no script can slip between clearing the fast path and the run id.
func (s *Store) Fence(ctx context.Context, item int64, shard int) error {
	cmd := s.c.B().Hset().Key(s.shardKey(item, shard, "ep")).FieldValue().FieldValue("run", "repair").FieldValue("ls", "x").Build()
	if err := s.c.Do(ctx, cmd).Error(); err != nil {
		return fmt.Errorf("fence item %d shard %d: %w", item, shard, err)
	}
	return nil
}

// Unfence marks a repaired shard verified by the running Redis process.
func (s *Store) Unfence(ctx context.Context, item int64, shard int) error {
	if err := s.exec(ctx, s.unfence, []string{s.shardKey(item, shard, "ep")}, nil).Error(); err != nil {
		return fmt.Errorf("unfence item %d shard %d: %w", item, shard, err)
	}
	return nil
}

// Outbox returns every entry of a shard's outbox (field -> value:
// flashgate.ParseEntry).
func (s *Store) Outbox(ctx context.Context, item int64, shard int) (map[string]string, error) {
	m, err := s.c.Do(ctx, s.c.B().Hgetall().Key(s.shardKey(item, shard, "outbox")).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("read outbox of item %d shard %d: %w", item, shard, err)
	}
	return m, nil
}

// Rebuild replaces a fenced shard's stock, buyer marks and log of transfers out
// (their units are in the recomputed stock; the credited ids in xin stay, so
// that no late credit counts twice):
// stock units, marks user -> order. The outbox is left as it is (its
// entries are the only copy of reservations not yet in Kafka); the caller
// settles those whose rows exist. The shard must be fenced: nothing else
// changes it meanwhile, and a repair cut short is simply done again.
func (s *Store) Rebuild(ctx context.Context, item int64, shard int, stock int64, marks map[int64]string) error {
	k := s.keysOf(item, shard)
	cmds := rueidis.Commands{
		s.c.B().Del().Key(k.buyers, k.base+"xout").Build(),
		s.c.B().Set().Key(k.stock).Value(strconv.FormatInt(stock, 10)).Build(),
	}
	const chunk = 1000
	cmd := s.c.B().Hset().Key(k.buyers).FieldValue()
	n := 0
	for user, order := range marks {
		cmd = cmd.FieldValue(strconv.FormatInt(user, 10), order)
		if n++; n == chunk {
			cmds = append(cmds, cmd.Build())
			cmd, n = s.c.B().Hset().Key(k.buyers).FieldValue(), 0
		}
	}
	if n > 0 {
		cmds = append(cmds, cmd.Build())
	}
	for _, r := range s.c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("rebuild item %d shard %d: %w", item, shard, err)
		}
	}
	return nil
}
