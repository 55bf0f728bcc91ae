package kafka

import "github.com/twmb/franz-go/pkg/kfake"

// Cluster is the embedded broker's kfake cluster, for tests that watch its
// requests.
func (b *Broker) Cluster() *kfake.Cluster { return b.c }
