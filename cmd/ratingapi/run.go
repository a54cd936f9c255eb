package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/middleware/ratelimit"
	"github.com/openclaw/ratelimit/ratingapi"
)

// Server timeouts. WriteTimeout also leaves room for RATE_LIMIT_MAX_WAIT_MS.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 15 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 32 << 10
	drainTimeout      = 15 * time.Second
)

// Exit statuses of run.
const (
	exitOK     = 0
	exitFailed = 1
	exitConfig = 2
)

// run starts the service with the configuration in environ and serves
// until ctx ends, then drains in-flight requests. It returns the exit
// status: 2 for a configuration mistake, 1 for another failure.
func run(ctx context.Context, environ map[string]string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(environ)
	if err != nil {
		fmt.Fprintf(stderr, "ratingapi: configuration: %v\n", err)
		return exitConfig
	}
	logger := newLogger(cfg, stdout)

	app, err := build(ctx, cfg, logger)
	if err != nil {
		logger.Error("start", "error", err.Error())
		return exitConfig
	}
	defer app.close()

	ln, err := net.Listen("tcp", cfg.listenAddr)
	if err != nil {
		logger.Error("listen", "addr", cfg.listenAddr, "error", err.Error())
		return exitFailed
	}
	srv := &http.Server{
		Handler:           app.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout + cfg.maxWait,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	app.logStart(ln.Addr().String())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		logger.Error("serve", "error", err.Error())
		return exitFailed
	case <-ctx.Done():
	}

	logger.Info("shutting down", "drain_timeout", (drainTimeout + cfg.maxWait).String())
	drainCtx, cancel := context.WithTimeout(context.Background(), drainTimeout+cfg.maxWait)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		logger.Error("shutdown", "error", err.Error())
		return exitFailed
	}
	logger.Info("stopped")
	return exitOK
}

// app is the wired service.
type app struct {
	cfg     config
	logger  *slog.Logger
	handler http.Handler
	backend string
	closers []func() error
}

// build wires the store, the metrics, the limiter and the router. It
// connects to Redis before it returns, within a bound, or says in the log
// why it could not.
func build(ctx context.Context, cfg config, logger *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, logger: logger, backend: "memory"}
	m := newMetrics()

	var keys *ratingapi.KeySet
	if cfg.apiKeys != nil {
		var err error
		if keys, err = ratingapi.NewKeySet(cfg.apiKeys); err != nil {
			return nil, err
		}
	}

	health := ratingapi.Health{Store: "memory"}
	active := func() bool { return false }
	var store bucket.Store = bucket.NewMemory(bucket.WithMaxKeys(cfg.maxKeys))
	if rc := cfg.redis; rc != nil {
		fallback, client := a.fallback(ctx, rc, m)
		store, active = fallback, fallback.Active
		a.backend, health.Store = "redis", "redis"
		a.closers = append(a.closers, fallback.Close, client.Close)
	}
	m.watchFallback(active)

	limiter := ratelimit.New(store, cfg.limit,
		ratelimit.WithShadow(cfg.shadow),
		ratelimit.WithMaxWait(cfg.maxWait),
		ratelimit.WithObserver(m.observe),
	)
	a.handler = ratingapi.New(ratingapi.Config{
		RateLimit: limiter,
		Keys:      keys,
		Health: func() ratingapi.Health {
			h := health
			h.FallbackActive = active()
			return h
		},
		Metrics: m.handler(),
		Logger:  logger,
	})
	return a, nil
}

// fallback returns the store that asks Redis first and memory when Redis
// fails. The client is warmed up first, so that the store's first
// heartbeat, which it sends at once, finds a connection ready. A Redis that
// is down now is a fallback, not a failure to start.
func (a *app) fallback(
	ctx context.Context, rc *redisConfig, m *metrics,
) (*bucket.Fallback, redis.UniversalClient) {
	redis.SetLogger(redisLogger{logger: a.logger})
	client := rc.client()
	warmUp(ctx, client, rc, a.logger)
	store := bucket.NewFallback(client,
		bucket.WithPrefix(rc.prefix),
		bucket.WithTimeout(rc.timeout),
		bucket.WithProbeInterval(rc.interval),
		bucket.WithMaxKeys(a.cfg.maxKeys),
		bucket.WithEvents(func(e bucket.Event) {
			m.event(e)
			logEvent(a.logger, e)
		}),
	)
	return store, client
}

func (a *app) logStart(addr string) {
	attrs := []any{
		"addr", addr,
		"backend", a.backend,
		"capacity", a.cfg.limit.Capacity,
		"refill_per_min", a.cfg.refillPerMin,
		"max_wait", a.cfg.maxWait.String(),
		"shadow", a.cfg.shadow,
	}
	if rc := a.cfg.redis; rc != nil {
		attrs = append(attrs, "redis", rc.addr(), "redis_tls", rc.tlsConfig() != nil,
			"redis_key_prefix", rc.prefix)
	}
	a.logger.Info("listening", attrs...)

	if a.cfg.apiKeys == nil {
		a.logger.Warn("API_KEYS and API_KEYS_FILE are unset: any API key is accepted")
	} else {
		a.logger.Info("API keys loaded", "count", len(a.cfg.apiKeys))
	}
	if a.cfg.ignoredRedis {
		a.logger.Warn("RATE_LIMIT_BACKEND is memory: the Redis settings are ignored")
	}
}

// close closes the fallback store, then the Redis client.
func (a *app) close() {
	var errs []error
	for _, c := range a.closers {
		errs = append(errs, c())
	}
	if err := errors.Join(errs...); err != nil {
		a.logger.Warn("close", "error", err.Error())
	}
}
