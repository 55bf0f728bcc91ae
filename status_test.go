package flashgate_test

import (
	"testing"
	"time"

	"github.com/flashgate/flashgate"
)

func TestActivityStatusAt(t *testing.T) {
	now := time.Date(2026, 11, 11, 20, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	for _, c := range []struct {
		name string
		a    flashgate.Activity
		want flashgate.ActivityStatus
	}{
		{"draft", flashgate.Activity{StartAt: now.Add(time.Hour), EndAt: now.Add(2 * time.Hour)}, flashgate.StatusDraft},
		{"scheduled", flashgate.Activity{StartAt: now.Add(time.Hour), EndAt: now.Add(2 * time.Hour), PublishAt: at(time.Minute)}, flashgate.StatusScheduled},
		{"upcoming", flashgate.Activity{StartAt: now.Add(time.Hour), EndAt: now.Add(2 * time.Hour), PublishedAt: at(-time.Minute)}, flashgate.StatusUpcoming},
		{"live at its start", flashgate.Activity{StartAt: now, EndAt: now.Add(time.Hour), PublishedAt: at(-time.Minute)}, flashgate.StatusLive},
		{"ended at its end", flashgate.Activity{StartAt: now.Add(-time.Hour), EndAt: now, PublishedAt: at(-2 * time.Hour)}, flashgate.StatusEnded},
		{"closed before its start", flashgate.Activity{StartAt: now.Add(time.Hour), EndAt: now.Add(-time.Second), PublishedAt: at(-time.Minute)}, flashgate.StatusEnded},
		{"archived", flashgate.Activity{StartAt: now.Add(-2 * time.Hour), EndAt: now.Add(-time.Hour), PublishedAt: at(-3 * time.Hour), ArchivedAt: at(0)}, flashgate.StatusArchived},
	} {
		if got := c.a.StatusAt(now); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
		if _, ok := flashgate.ParseActivityStatus(string(c.want)); !ok {
			t.Errorf("%s does not parse", c.want)
		}
	}
	if _, ok := flashgate.ParseActivityStatus("running"); ok {
		t.Error("an unknown status parses")
	}
}
