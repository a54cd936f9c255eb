package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"
)

// figures are the medians of one row.
type figures struct {
	ok                   bool
	ops, p50, p99        float64
	sent, served, allocs float64
	ownCPU, redisCPU     float64 // nanoseconds per decision
	allowed              float64 // share of decisions allowed
	errors               float64 // share of calls that failed
	runs                 int
}

func medianOf(samples []sample, f func(sample) float64) float64 {
	var vals []float64
	for _, s := range samples {
		if s.err == nil {
			vals = append(vals, f(s))
		}
	}
	return median(vals)
}

// median returns the median of vals, which it sorts, or 0 when it is empty.
func median(vals []float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	slices.Sort(vals)
	mid := len(vals) / 2
	if len(vals)%2 == 1 {
		return vals[mid]
	}
	return (vals[mid-1] + vals[mid]) / 2
}

func (b *bench) figures(table string, callers int, label string) figures {
	samples := b.samples[rowKey{table: table, callers: callers, contender: label}]
	fig := figures{
		ops:    medianOf(samples, sample.opsPerSec),
		p50:    medianOf(samples, func(s sample) float64 { return float64(s.p50) }),
		p99:    medianOf(samples, func(s sample) float64 { return float64(s.p99) }),
		sent:   medianOf(samples, func(s sample) float64 { return s.sent }),
		served: medianOf(samples, func(s sample) float64 { return s.served }),
		allocs: medianOf(samples, func(s sample) float64 { return s.allocs }),
		ownCPU: medianOf(samples, func(s sample) float64 { return float64(s.ownCPU) }),
		redisCPU: medianOf(samples, func(s sample) float64 {
			return float64(s.redisCPU)
		}),
		allowed: medianOf(samples, func(s sample) float64 {
			return float64(s.allowed) / float64(max(s.ops, 1))
		}),
		errors: medianOf(samples, func(s sample) float64 {
			return float64(s.errors) / float64(max(s.ops+s.errors, 1))
		}),
	}
	for _, s := range samples {
		if s.err == nil {
			fig.runs++
		}
	}
	fig.ok = fig.runs > 0
	return fig
}

func (b *bench) report(w io.Writer) {
	fmt.Fprintf(w, "# Rate limiter benchmarks\n\n")
	fmt.Fprintf(w, "redis-server %s on loopback, %s, GOMAXPROCS %d, %d run(s) of %v each "+
		"(median shown), %v warm-up. Ratios (x) are to the reference in the same run: one "+
		"EVALSHA of a minimal token-bucket script per decision, with go-redis.\n\n",
		b.version, runtime.Version(), runtime.GOMAXPROCS(0), b.cfg.runs, b.cfg.duration, b.cfg.warmup)
	fmt.Fprintf(w, "Columns: decisions per second; latency of one decision at the 50th and 99th "+
		"percentile; commands the client sent to Redis per decision (go-redis hook); commands "+
		"Redis ran per decision, script-internal calls included (INFO commandstats); CPU "+
		"time per decision of the benchmark process (getrusage: the limiter, its client and "+
		"the callers) and of redis-server (INFO cpu); heap "+
		"allocations per decision (runtime.MemStats); share of decisions allowed; and the "+
		"correctness check (a fresh key of capacity %d, no refill to speak of, %d calls "+
		"from 64 goroutines at once: exactly %d must pass).\n\n",
		exactCapacity, 2*exactCapacity, exactCapacity)

	for _, bc := range b.tables() {
		for _, n := range bc.callers {
			ref := b.figures(bc.name, n, bc.ref)
			fmt.Fprintf(w, "## %s, %d callers\n\nRatios are to %s.\n\n", bc.name, n, bc.ref)
			fmt.Fprintln(w, "| contender | store | ops/s | x | p50 | x | p99 | x | "+
				"sent/op | Redis cmds/op | x | CPU/op | Redis CPU/op | allocs/op | x | "+
				"allowed | errors | exact |")
			fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
			for _, c := range bc.rows {
				b.row(w, bc.name, n, c, ref)
			}
			fmt.Fprintln(w)
		}
	}
	b.targets(w)
}

// table is one group of tables in the report.
type table struct {
	name    string
	callers []int
	rows    []contender
	ref     string // label of the row the ratios are to
}

func (b *bench) tables() []table {
	var out []table
	for _, bc := range cases() {
		out = append(out, table{name: bc.name, callers: b.cfg.callers, rows: b.selected(), ref: refLabel})
	}
	return append(out, b.httpTables()...)
}

// refLabel names the reference row of the tables of direct calls.
var refLabel = contender{name: referenceName, store: "redis"}.label()

func (b *bench) row(w io.Writer, table string, n int, c contender, ref figures) {
	exact := "-"
	if r, ok := b.exact[c.label()]; ok {
		switch {
		case r.failed > 0:
			exact = fmt.Sprintf("%d of %d, %d calls failed: %s", r.admitted, 2*exactCapacity,
				r.failed, oneLine(r.err.Error()))
		case r.err != nil:
			exact = "error: " + oneLine(r.err.Error())
		case r.admitted == exactCapacity:
			exact = fmt.Sprintf("%d of %d, exact", r.admitted, 2*exactCapacity)
		default:
			exact = fmt.Sprintf("%d of %d, NOT exact", r.admitted, 2*exactCapacity)
		}
	}
	if c.missing != "" {
		fmt.Fprintf(w, "| %s | %s | missing: %s | | | | | | | | | | | | | | | |\n",
			c.name, c.store, c.missing)
		return
	}
	f := b.figures(table, n, c.label())
	if !f.ok {
		fmt.Fprintf(w, "| %s | %s | failed | | | | | | | | | | | | | | | %s |\n",
			c.name, c.store, exact)
		return
	}
	const row = "| %s | %s | %s | %s | %s | %s | %s | %s | %.3f | %.3f | %s | %s | %s | %.2f | %s " +
		"| %.0f%% | %s | %s |\n"
	fmt.Fprintf(w, row,
		c.name, c.store,
		count(f.ops), ratio(f.ops, ref.ops),
		micros(f.p50), ratio(f.p50, ref.p50),
		micros(f.p99), ratio(f.p99, ref.p99),
		f.sent, f.served, ratio(f.served, ref.served),
		micros(f.ownCPU), micros(f.redisCPU),
		f.allocs, ratio(f.allocs, ref.allocs),
		100*f.allowed, percent(f.errors), exact)
}

func count(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func micros(ns float64) string {
	return fmt.Sprintf("%.1fµs", ns/float64(time.Microsecond))
}

func ratio(v, ref float64) string {
	if ref == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v/ref)
}

func percent(v float64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}

func oneLine(s string) string {
	return strings.ReplaceAll(s, "|", "/")
}
