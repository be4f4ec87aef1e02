package relay

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs is a pion logger factory that passes the pion client's
// warnings and errors to slog, its debug and info messages at debug level,
// and drops its traces. What pion does in the background (refreshing the
// allocation, permissions and channel bindings) fails only there. Once
// the allocation closes, pion's complaints about the requests Close cut
// short are only debug messages.
type pionLogs struct {
	server  string      // as configured, for messages
	closing func() bool // whether the allocation is closing
}

// NewLogger returns the logger for one pion component.
func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{pionLogs: f, scope: scope}
}

type pionLogger struct {
	pionLogs
	scope string
}

func (l pionLogger) log(level slog.Level, msg string) {
	if level > slog.LevelDebug && l.closing() {
		level = slog.LevelDebug
	}
	ctx := context.Background()
	if lg := slog.Default(); lg.Enabled(ctx, level) {
		lg.Log(ctx, level, "relay: pion: "+msg, "server", l.server, "scope", l.scope)
	}
}

func (l pionLogger) Trace(string)          {}
func (l pionLogger) Tracef(string, ...any) {}

func (l pionLogger) Debug(msg string) { l.log(slog.LevelDebug, msg) }
func (l pionLogger) Debugf(format string, a ...any) {
	l.log(slog.LevelDebug, fmt.Sprintf(format, a...))
}
func (l pionLogger) Info(msg string)               { l.log(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, a ...any) { l.log(slog.LevelDebug, fmt.Sprintf(format, a...)) }
func (l pionLogger) Warn(msg string)               { l.log(slog.LevelWarn, msg) }
func (l pionLogger) Warnf(format string, a ...any) { l.log(slog.LevelWarn, fmt.Sprintf(format, a...)) }
func (l pionLogger) Error(msg string)              { l.log(slog.LevelError, msg) }
func (l pionLogger) Errorf(format string, a ...any) {
	l.log(slog.LevelError, fmt.Sprintf(format, a...))
}
