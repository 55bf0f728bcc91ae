package logging_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/logging"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines decodes the JSON lines written so far.
func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if s == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("not JSON: %q", s)
		}
		out = append(out, m)
	}
	return out
}

// events adds up the events the lines stand for: one for a first line, its
// count for a repeat line.
func events(lines []map[string]any) int {
	n := 0
	for _, l := range lines {
		if r, ok := l["repeated"].(float64); ok {
			n += int(r)
		} else {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLimitedLogsTheFirstThenCounts(t *testing.T) {
	var buf lockedBuffer
	const every = 200 * time.Millisecond
	l := logging.NewLimited(logging.New(&buf, slog.LevelInfo, logging.JSON), slog.LevelWarn, "reserve", every)

	// A flood from many goroutines: the first event is a line at once.
	const n, workers = 20000, 8
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < n/workers; i++ {
				l.Log("item", w, "err", "connection refused")
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	lines := buf.lines(t)
	if len(lines) < 1 || lines[0]["msg"] != "reserve" || lines[0]["level"] != "WARN" || lines[0]["err"] != "connection refused" {
		t.Fatalf("first line: %v", lines)
	}
	if most := 1 + int(elapsed/every) + 1; len(lines) > most {
		t.Fatalf("%d lines for %d events in %v, at most %d expected", len(lines), n, elapsed, most)
	}
	// The window's end reports the rest as a count with the latest
	// attributes; the counts add up to every event, none twice.
	waitFor(t, func() error {
		if got := events(buf.lines(t)); got != n {
			return fmt.Errorf("lines account for %d of %d events", got, n)
		}
		return nil
	})
	last := buf.lines(t)[len(buf.lines(t))-1]
	if last["repeated"] == nil || last["err"] != "connection refused" || last["in_last"] == nil {
		t.Fatalf("count line: %v", last)
	}

	// A quiet window closes it: the next event is a line at once again.
	// Try once per three windows, which holds at least one quiet one.
	ok := false
	for attempt := 0; attempt < 5 && !ok; attempt++ {
		time.Sleep(3 * every)
		before := len(buf.lines(t))
		l.Log("item", 1, "err", "again")
		lines := buf.lines(t)
		ok = len(lines) > before && lines[before]["err"] == "again" && lines[before]["repeated"] == nil
	}
	if !ok {
		t.Fatal("an event after a quiet window was not logged at once")
	}

	// Flush reports what is held back, at shutdown.
	l.Log("err", "held")
	l.Log("err", "held")
	l.Flush()
	lines = buf.lines(t)
	if last := lines[len(lines)-1]; last["repeated"] == nil || last["err"] != "held" {
		t.Fatalf("flush: %v", last)
	}
}

// A level the logger does not log costs nothing and opens no window.
func TestLimitedBelowLevel(t *testing.T) {
	var buf lockedBuffer
	l := logging.NewLimited(logging.New(&buf, slog.LevelError, logging.Text), slog.LevelWarn, "reserve", time.Millisecond)
	for i := 0; i < 100; i++ {
		l.Log("i", i)
	}
	l.Flush()
	if buf.b.Len() != 0 {
		t.Fatalf("logged below the level: %q", buf.b.String())
	}
}
