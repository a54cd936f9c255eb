package main

import (
	"fmt"
	"io"
)

// Labels of the rows the targets compare.
var (
	oursRedis    = contender{name: "ours: bucket.Redis", store: "redis"}.label()
	oursFallback = contender{name: "ours: bucket.Fallback", store: "redis"}.label()
	oursDead     = contender{name: "ours: Fallback, Redis dead", store: "memory"}.label()
	oursMemory   = contender{name: "ours: bucket.Memory", store: "memory"}.label()
	redisRate    = contender{name: "redis_rate v10", store: "redis"}.label()
	xRate        = contender{name: "x/time/rate (map+mutex)", store: "memory"}.label()
	httpBase     = contender{name: baselineName, store: "none"}.label()
	httpMemory   = contender{name: "ours: ratelimit on bucket.Memory", store: "memory"}.label()
	httpHeaders  = contender{name: headersName, store: "none"}.label()
)

// targets prints, for each target the project holds itself to, whether
// this run met it and the numbers that say so.
func (b *bench) targets(w io.Writer) {
	fmt.Fprintf(w, "## Targets\n\n")
	check := func(met bool, format string, args ...any) {
		mark := "met"
		if !met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "- %s: %s\n", mark, fmt.Sprintf(format, args...))
	}
	cs := cases()
	allowedCases := []string{cs[0].name, cs[1].name}
	flood := cs[2].name

	for _, name := range allowedCases {
		for _, n := range b.cfg.callers {
			ref := b.figures(name, n, refLabel)
			for _, ours := range []string{oursRedis, oursFallback} {
				f := b.figures(name, n, ours)
				if !f.ok || !ref.ok {
					continue
				}
				check(f.ops >= 0.9*ref.ops, "%s, %d callers: %s at %.2f of the reference (>= 0.90)",
					name, n, ours, f.ops/ref.ops)
				best, bestOps := b.bestRedisPeer(name, n)
				if best != "" {
					check(f.ops > bestOps, "%s, %d callers: %s at %.2f of the best Redis peer, %s",
						name, n, ours, f.ops/bestOps, best)
				}
			}
		}
	}

	for _, n := range b.cfg.callers {
		fb, rr := b.figures(flood, n, oursFallback), b.figures(flood, n, redisRate)
		if fb.ok && rr.ok {
			check(fb.ops >= 10*rr.ops, "%s, %d callers: bucket.Fallback at %.1f times redis_rate (>= 10)",
				flood, n, fb.ops/rr.ops)
			check(fb.sent < 0.01, "%s, %d callers: bucket.Fallback sends %.4f commands per refusal (< 0.01)",
				flood, n, fb.sent)
		}
	}

	for _, bc := range cs {
		for _, n := range b.cfg.callers {
			m, x := b.figures(bc.name, n, oursMemory), b.figures(bc.name, n, xRate)
			if m.ok && x.ok {
				check(m.ops >= x.ops && m.allocs < 0.005,
					"%s, %d callers: bucket.Memory at %.2f of x/time/rate, %.3f allocs per decision",
					bc.name, n, m.ops/x.ops, m.allocs)
			}
			d := b.figures(bc.name, n, oursDead)
			if m.ok && d.ok {
				check(d.p99 <= 2*m.p99, "%s, %d callers: Fallback with Redis dead p99 %s, "+
					"%.2f times bucket.Memory's %s (<= 2)", bc.name, n, micros(d.p99), d.p99/m.p99, micros(m.p99))
			}
		}
	}

	for _, n := range b.cfg.callers {
		cost, cpu, pairs, ok := b.httpCost(n, 0)
		if !ok {
			continue
		}
		check(cost < 0.05, "HTTP, %d callers: the middleware on bucket.Memory costs %.1f%% "+
			"of the baseline's throughput (< 5%%), and adds %.1f%% to its CPU time per request "+
			"(medians of %d measurements, each against the baseline just before and after)",
			n, 100*cost, 100*cpu, pairs)
		if cost, cpu, _, ok := b.httpCost(n, 1); ok {
			fmt.Fprintf(w, "  - of which the five headers alone, written by a handler that "+
				"limits nothing, cost %.1f%% of the throughput and %.1f%% more CPU a request\n",
				100*cost, 100*cpu)
		}
	}

	for _, c := range b.selected() {
		if !c.ours {
			continue
		}
		r, ok := b.exact[c.label()]
		if ok {
			check(r.err == nil && r.admitted == exactCapacity,
				"correctness of %s: %d of %d admitted (exactly %d)",
				c.label(), r.admitted, 2*exactCapacity, exactCapacity)
		}
	}
	fmt.Fprintln(w)
}

// bestRedisPeer returns the fastest Redis-backed contender that is not
// this project's and not the reference.
func (b *bench) bestRedisPeer(table string, n int) (string, float64) {
	var best string
	var bestOps float64
	for _, c := range b.selected() {
		if c.ours || c.store != "redis" || c.name == referenceName || c.missing != "" {
			continue
		}
		if f := b.figures(table, n, c.label()); f.ok && f.ops > bestOps {
			best, bestOps = c.label(), f.ops
		}
	}
	return best, bestOps
}
