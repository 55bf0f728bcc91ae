package logging

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limited logs one kind of event that can repeat thousands of times a second
// (a failed buy while Redis is down): the first at once, then at most one
// line per interval saying how many more happened, with the attributes of
// the latest. A quiet interval closes the window, so the next event is
// logged at once again. Safe for concurrent use.
//
// During a Redis outage every failed buy used to log a WARN line (7,227 in a
// few seconds), which buried the one line that mattered and cost the
// gateway what it was trying to save.
type Limited struct {
	log   *slog.Logger
	level slog.Level
	msg   string
	every time.Duration

	mu     sync.Mutex
	window *time.Timer // armed while a window is open
	n      int         // events since the last line
	last   []any       // attributes of the latest of them
}

// NewLimited returns a Limited logging msg at level through log, at most one
// line per every (default 10s).
func NewLimited(log *slog.Logger, level slog.Level, msg string, every time.Duration) *Limited {
	if every <= 0 {
		every = 10 * time.Second
	}
	return &Limited{log: log, level: level, msg: msg, every: every}
}

// Log records one event with its attributes (slog key-value pairs).
func (l *Limited) Log(args ...any) {
	if !l.log.Enabled(context.Background(), l.level) {
		return
	}
	l.mu.Lock()
	if l.window != nil {
		l.n++
		l.last = args
		l.mu.Unlock()
		return
	}
	l.window = time.AfterFunc(l.every, l.flush)
	l.mu.Unlock()
	l.log.Log(context.Background(), l.level, l.msg, args...)
}

// flush ends a window: it logs the count of the events the window held back,
// or, when there were none, closes the window.
func (l *Limited) flush() {
	l.mu.Lock()
	n, last := l.n, l.last
	l.n, l.last = 0, nil
	if n == 0 {
		l.window = nil
		l.mu.Unlock()
		return
	}
	l.window.Reset(l.every)
	l.mu.Unlock()
	l.log.Log(context.Background(), l.level, l.msg, append([]any{"repeated", n, "in_last", l.every}, last...)...)
}

// Flush logs the count held back now, for a clean shutdown; a later event
// opens a new window.
func (l *Limited) Flush() {
	l.mu.Lock()
	if l.window != nil {
		l.window.Stop()
		l.window = nil
	}
	n, last := l.n, l.last
	l.n, l.last = 0, nil
	l.mu.Unlock()
	if n > 0 {
		l.log.Log(context.Background(), l.level, l.msg, append([]any{"repeated", n}, last...)...)
	}
}
