package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/openclaw/ratelimit/bucket"
)

// newLogger returns the logger that LOG_LEVEL and LOG_FORMAT ask for.
func newLogger(c config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.logLevel)) // checked by loadConfig
	opts := &slog.HandlerOptions{Level: level}
	if c.logFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// logEvent writes an event of the fallback store as a log line. Switches
// of the fallback are rate_limit_fallback lines; single Redis errors are
// logged at debug level only, since an outage makes many.
func logEvent(logger *slog.Logger, e bucket.Event) {
	switch e.Kind {
	case bucket.EventFallbackOn:
		logger.Warn("rate_limit_fallback", "state", "on", "reason", errText(e.Err),
			"instances", e.Instances)
	case bucket.EventFallbackOff:
		logger.Info("rate_limit_fallback", "state", "off", "reason", "redis answers again",
			"outage", e.Outage.String(), "outage_seconds", e.Outage.Seconds(),
			"keys_written_back", e.WrittenBack, "keys_dropped", e.Dropped)
	case bucket.EventRedisError:
		logger.Debug("redis_error", "reason", errText(e.Err))
	}
}

func errText(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
}

// redisLogger sends the messages of the go-redis client to slog at debug
// level instead of to stderr.
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.DebugContext(ctx, "redis_client", "message", fmt.Sprintf(format, v...))
}
