package testenv_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestRedisCluster: the helper's cluster has three masters that split the
// slots, serves keys on each, and survives a live reshard.
func TestRedisCluster(t *testing.T) {
	cl := testenv.RedisCluster(t)
	if again := testenv.RedisCluster(t); again != cl {
		t.Fatal("a second call started a second cluster")
	}
	if len(cl.Addrs) != 3 {
		t.Fatalf("masters: %v", cl.Addrs)
	}
	ctx := context.Background()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: cl.Addrs[:1], DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := len(c.Nodes()); n != 3 {
		t.Fatalf("the client sees %d nodes, want 3", n)
	}
	prefix := testenv.PrefixOn(t, cl.Addrs)
	keys := map[string]bool{} // node -> holds one of our keys
	for i := 0; len(keys) < 3 && i < 100; i++ {
		k := prefix + ":{t" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "}:k"
		if err := c.Do(ctx, c.B().Set().Key(k).Value("v").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		slot, _ := c.Do(ctx, c.B().ClusterKeyslot().Key(k).Build()).AsInt64()
		for _, a := range cl.Addrs {
			out, err := cl.CLI(a, "cluster", "countkeysinslot", strconv.FormatInt(slot, 10))
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(out) == "1" {
				keys[a] = true
			}
		}
	}
	if len(keys) != 3 {
		t.Fatalf("keys landed on %d masters, want 3", len(keys))
	}
	start := time.Now()
	if err := cl.Reshard(ctx, cl.Addrs[0], cl.Addrs[1], 300); err != nil {
		t.Fatal(err)
	}
	t.Logf("reshard of 300 slots took %v", time.Since(start))
	if err := cl.Reshard(ctx, cl.Addrs[1], cl.Addrs[0], 300); err != nil {
		t.Fatal(err)
	}
}
