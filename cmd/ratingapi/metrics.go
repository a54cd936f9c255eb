package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/middleware/ratelimit"
)

// metrics are the Prometheus series of the binary, in a registry of its
// own. No series has a per-key label.
type metrics struct {
	registry    *prometheus.Registry
	decisions   *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	transitions *prometheus.CounterVec
	redisErrors prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratelimit_decisions_total",
			Help: "Rate limit decisions by result and by the backend that made them.",
		}, []string{"result", "backend"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ratelimit_decision_duration_seconds",
			Help: "Time spent asking the rate limit store, waits in wait mode included.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01,
				.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"backend"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratelimit_fallback_transitions_total",
			Help: "Switches of the fallback store to memory (on) and back to Redis (off).",
		}, []string{"state"}),
		redisErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ratelimit_redis_errors_total",
			Help: "Failed Redis calls, on the request path and in background probes.",
		}),
	}
	m.registry.MustRegister(m.decisions, m.latency, m.transitions, m.redisErrors,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Both states exist from the start, so that rate() sees the first one.
	m.transitions.WithLabelValues("on")
	m.transitions.WithLabelValues("off")
	return m
}

// watchFallback adds the gauge of whether fallback is active.
func (m *metrics) watchFallback(active func() bool) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ratelimit_fallback_active",
		Help: "1 while Redis is failing and decisions come from memory, else 0.",
	}, func() float64 {
		if active() {
			return 1
		}
		return 0
	}))
}

// observe records one decision of the middleware.
func (m *metrics) observe(o ratelimit.Observation) {
	backend := string(o.Backend)
	if backend == "" {
		backend = "none"
	}
	m.decisions.WithLabelValues(string(o.Outcome), backend).Inc()
	if o.Latency > 0 || o.Backend != "" {
		m.latency.WithLabelValues(backend).Observe(o.Latency.Seconds())
	}
}

// event records an event of the fallback store.
func (m *metrics) event(e bucket.Event) {
	switch e.Kind {
	case bucket.EventFallbackOn:
		m.transitions.WithLabelValues("on").Inc()
	case bucket.EventFallbackOff:
		m.transitions.WithLabelValues("off").Inc()
	case bucket.EventRedisError:
		m.redisErrors.Inc()
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
