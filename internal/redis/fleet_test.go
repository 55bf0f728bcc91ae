package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/testenv"
)

// TestHeartbeat: gateways count themselves in; one that leaves is gone at
// once, one that falls silent is gone after the TTL; a Redis Cluster counts
// the same.
func TestHeartbeat(t *testing.T) {
	onCluster, _ := openCluster(t)
	for name, s := range map[string]interface {
		Heartbeat(context.Context, string, time.Duration) (int, error)
		Leave(context.Context, string) error
	}{"single": open(t), "cluster": onCluster} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			beat := func(id string, ttl time.Duration) int {
				t.Helper()
				n, err := s.Heartbeat(ctx, id, ttl)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			if n := beat("a", time.Minute); n != 1 {
				t.Fatalf("the first gateway counts %d", n)
			}
			if n := beat("b", time.Minute); n != 2 {
				t.Fatalf("the second gateway counts %d", n)
			}
			if n := beat("a", time.Minute); n != 2 {
				t.Fatalf("a second beat of the first gateway counts %d", n)
			}
			if err := s.Leave(ctx, "b"); err != nil {
				t.Fatal(err)
			}
			if n := beat("a", time.Minute); n != 1 {
				t.Fatalf("after the second gateway left: %d", n)
			}
			beat("c", time.Minute)
			testenv.Eventually(t, 5*time.Second, func() error {
				// A 300ms TTL: c's beat above ages out, a's own beat counts.
				if n := beat("a", 300*time.Millisecond); n != 1 {
					return fmt.Errorf("still %d gateways", n)
				}
				return nil
			})
		})
	}
}
