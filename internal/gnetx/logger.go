package gnetx

import (
	"context"
	"fmt"
	"log/slog"
)

// Logger adapts a slog.Logger to gnet's logging.Logger (pass it with
// gnet.WithLogger; Start does). gnet logs to stdout otherwise.
//
// gnet's informational messages are logged at Debug level: they name the
// placeholder addresses of adopted listeners, which would mislead an
// operator. gnet's Fatalf is logged at Error level and does not exit.
type Logger struct {
	L *slog.Logger
}

func (l Logger) log(level slog.Level, format string, args []any) {
	if l.L == nil || !l.L.Enabled(context.Background(), level) {
		return
	}
	l.L.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "gnet")
}

// Debugf logs at Debug level.
func (l Logger) Debugf(format string, args ...any) { l.log(slog.LevelDebug, format, args) }

// Infof logs at Debug level (see Logger).
func (l Logger) Infof(format string, args ...any) { l.log(slog.LevelDebug, format, args) }

// Warnf logs at Warn level.
func (l Logger) Warnf(format string, args ...any) { l.log(slog.LevelWarn, format, args) }

// Errorf logs at Error level.
func (l Logger) Errorf(format string, args ...any) { l.log(slog.LevelError, format, args) }

// Fatalf logs at Error level.
func (l Logger) Fatalf(format string, args ...any) { l.log(slog.LevelError, format, args) }
