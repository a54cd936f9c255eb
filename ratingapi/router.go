package ratingapi

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
)

// Config holds what the router needs. The zero value serves without rate
// limits, accepts any well-formed key, and has no /metrics route.
type Config struct {
	// RateLimit wraps the /v1 routes, after the key check; nil limits
	// nothing. The binary passes ratelimit.New(...).
	RateLimit func(http.Handler) http.Handler

	// Keys are the accepted API keys; nil accepts any well-formed key.
	Keys *KeySet

	// Ratings holds the aggregates; nil makes a store of DefaultMaxItems.
	Ratings *Ratings

	// Health reports the state of the rate limit store for /healthz; nil
	// reports the memory store.
	Health func() Health

	// Metrics serves GET /metrics; nil leaves the route out.
	Metrics http.Handler

	// Logger receives recovered panics; nil discards them.
	Logger *slog.Logger

	// Now dates new ratings; nil uses time.Now.
	Now func() time.Time
}

// New returns the router of the Rating API.
func New(cfg Config) http.Handler {
	a := &api{ratings: cfg.Ratings, health: cfg.Health, now: cfg.Now}
	if a.ratings == nil {
		a.ratings = NewRatings(DefaultMaxItems)
	}
	if a.now == nil {
		a.now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	r := chi.NewRouter()
	r.Use(recoverer(logger))
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such route")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed on this route")
	})

	r.Get("/healthz", a.healthz)
	if cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", cfg.Metrics)
	}
	r.Route("/v1", func(r chi.Router) {
		r.Use(requireKey(cfg.Keys))
		if cfg.RateLimit != nil {
			r.Use(cfg.RateLimit)
		}
		r.Post("/ratings", a.postRating)
		r.Get("/items/{item_id}/rating", a.getRating)
	})
	return r
}

// recoverer turns a panic in a handler into a 500 with a JSON body that
// says nothing of the cause, and logs the cause.
func recoverer(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tw := &trackingWriter{ResponseWriter: w}
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.Error("handler panicked", "method", r.Method, "route", routeOf(r),
					"panic", v, "stack", string(debug.Stack()))
				if !tw.wrote {
					writeError(tw, http.StatusInternalServerError, "internal error")
				}
			}()
			next.ServeHTTP(tw, r)
		})
	}
}

// routeOf returns the route pattern of r, which holds no client data.
func routeOf(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unknown"
}

// trackingWriter remembers whether the response has begun.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(status int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *trackingWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}
