package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/config"
)

// The workers' linger: 100ms unless set, a Go duration from 1ms to 10s,
// and anything else refused with the setting's name.
func TestWorkerLinger(t *testing.T) {
	c, err := config.FromValues(config.RoleWorker, values(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.WorkerLinger != 100*time.Millisecond {
		t.Errorf("default linger %v, want 100ms", c.WorkerLinger)
	}
	c, err = config.FromValues(config.RoleWorker, values(map[string]string{"FLASHGATE_WORKER_LINGER": "250ms"}))
	if err != nil || c.WorkerLinger != 250*time.Millisecond {
		t.Errorf("linger 250ms: %v, %v", c.WorkerLinger, err)
	}
	for _, bad := range []string{"0s", "500us", "11s", "-1s", "fast", "100"} {
		_, err := config.FromValues(config.RoleWorker, values(map[string]string{"FLASHGATE_WORKER_LINGER": bad}))
		if err == nil || !strings.Contains(err.Error(), "FLASHGATE_WORKER_LINGER") {
			t.Errorf("linger %q: %v, want an error naming the setting", bad, err)
		}
	}
}
