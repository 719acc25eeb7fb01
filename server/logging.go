package server

import (
	"io"
	"log/slog"
)

// NewJSONLogHandler returns slog's JSON handler with durations written as
// seconds (DurationSeconds) rather than slog's integer nanoseconds:
// `"backoff":0.01`, not `"backoff":10000000`. opts may be nil; its own
// ReplaceAttr, if any, runs after the conversion. subordinate serve
// --log-format json uses it; a program that embeds the server and logs
// JSON should too, so that its logs read like the command's.
func NewJSONLogHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	o := slog.HandlerOptions{}
	if opts != nil {
		o = *opts
	}
	next := o.ReplaceAttr
	o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		a = DurationSeconds(groups, a)
		if next != nil {
			a = next(groups, a)
		}
		return a
	}
	return slog.NewJSONHandler(w, &o)
}

// DurationSeconds is a slog.HandlerOptions.ReplaceAttr function that
// turns a time.Duration value into its float seconds (10ms is 0.01).
// Text logs do not need it: slog writes a duration there as 10ms.
func DurationSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key, a.Value.Duration().Seconds())
	}
	return a
}
