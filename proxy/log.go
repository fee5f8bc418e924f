package proxy

import (
	"io"
	"log/slog"

	"github.com/dotproxy/dotproxy/config"
)

// NewLogger builds the process logger the configuration asks for.
func NewLogger(w io.Writer, c config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
