// Package logging builds flashgate's loggers (log/slog): text or JSON lines
// at a level, an access log for the HTTP servers, and a rate-limited logger
// for failures that can repeat thousands of times a second.
package logging

import (
	"io"
	"log/slog"
)

// Formats of New.
const (
	Text = "text" // key=value lines
	JSON = "json" // one JSON object a line
)

// New returns a logger writing format lines at level to w. An unknown
// format is text (config validates FLASHGATE_LOG_FORMAT before).
func New(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == JSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
