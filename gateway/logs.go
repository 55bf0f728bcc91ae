package gateway

import (
	"log/slog"
	"time"

	"github.com/flashgate/flashgate/internal/logging"
)

// warnings that a dependency outage repeats for every request: each is
// logged once, then as a count every Config.WarnEvery (logging.Limited).
var warnings = []string{"read item state", "reserve", "read item", "read remaining", "list activities", "read order"}

func newWarns(log *slog.Logger, every time.Duration) map[string]*logging.Limited {
	m := make(map[string]*logging.Limited, len(warnings))
	for _, msg := range warnings {
		m[msg] = logging.NewLimited(log, slog.LevelWarn, msg, every)
	}
	return m
}

// warn logs a warning of a failed dependency call, rate limited per message.
func (g *Gateway) warn(msg string, args ...any) {
	if l := g.warns[msg]; l != nil {
		l.Log(args...)
		return
	}
	g.log.Warn(msg, args...)
}

// flushWarns logs the counts still held back, at shutdown.
func (g *Gateway) flushWarns() {
	for _, l := range g.warns {
		l.Flush()
	}
}
