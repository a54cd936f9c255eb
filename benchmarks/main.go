// Command benchmarks measures this project's rate limiter against the Go
// rate limiters in common use, on one redis-server that it starts itself,
// in one run, and prints the results as markdown tables.
//
//	cd benchmarks && go run .           # the full run, about 10 minutes
//	cd benchmarks && go run . -smoke    # a short run for CI, under a minute
//
// Each figure is the median of -runs runs, and is also given as a ratio to
// the reference measured in the same run: one EVALSHA of a minimal token
// bucket script per decision, with go-redis. The program exits non-zero
// when a case fails to run or this project's correctness check is not
// exact.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

type config struct {
	smoke    bool
	runs     int
	duration time.Duration
	warmup   time.Duration
	callers  []int
	only     *regexp.Regexp
	out      string
	cpuprof  string
}

func main() {
	os.Exit(mainErr())
}

func mainErr() int {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmarks:", err)
		return 2
	}

	redis.SetLogger(quietLogger{})

	srv, err := startServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmarks:", err)
		return 1
	}
	defer srv.stop()

	// An interrupt stops the server before the program ends.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		srv.stop()
		fmt.Fprintln(os.Stderr, "benchmarks: stopped by", s)
		os.Exit(130)
	}()

	if cfg.cpuprof != "" {
		f, err := os.Create(cfg.cpuprof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchmarks:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "benchmarks:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	b := newBench(cfg, srv)
	defer b.close()
	b.runAll()

	var out io.Writer = os.Stdout
	if cfg.out != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.out), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "benchmarks:", err)
			return 1
		}
		f, err := os.Create(cfg.out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchmarks:", err)
			return 1
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	b.report(out)

	if failures := b.failures(); len(failures) > 0 {
		fmt.Fprintln(os.Stderr, "benchmarks: failed:")
		for _, f := range failures {
			fmt.Fprintln(os.Stderr, "  -", f)
		}
		return 1
	}
	return 0
}

func parseFlags() (config, error) {
	var (
		cfg     config
		callers string
		only    string
	)
	flag.BoolVar(&cfg.smoke, "smoke", false, "a short run: one run of 100ms per case")
	flag.IntVar(&cfg.runs, "runs", 3, "runs of every case; figures are their medians")
	flag.DurationVar(&cfg.duration, "duration", time.Second, "how long one case is measured")
	flag.DurationVar(&cfg.warmup, "warmup", 200*time.Millisecond, "calls before measuring")
	flag.StringVar(&callers, "callers", "8,64", "concurrent callers, comma-separated")
	flag.StringVar(&only, "only", "", "measure only contenders whose name matches")
	flag.StringVar(&cfg.out, "out", "", "also write the report to this file (e.g. results/run.md)")
	flag.StringVar(&cfg.cpuprof, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()

	if cfg.smoke {
		cfg.runs, cfg.duration, cfg.warmup = 1, 100*time.Millisecond, 30*time.Millisecond
	}
	if cfg.runs < 1 || cfg.duration <= 0 || cfg.warmup < 0 {
		return cfg, fmt.Errorf("-runs must be at least 1 and -duration above 0")
	}
	for _, f := range strings.Split(callers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("-callers: %q is not a positive number", f)
		}
		cfg.callers = append(cfg.callers, n)
	}
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			return cfg, fmt.Errorf("-only: %w", err)
		}
		cfg.only = re
	}
	return cfg, nil
}

// bench holds the server, the clients and the samples of one run.
type bench struct {
	cfg     config
	srv     *server
	admin   *redis.Client
	deadAt  string
	version string
	serial  int

	samples map[rowKey][]sample
	exact   map[string]exactResult
	errs    []string
}

// rowKey names one line of one table.
type rowKey struct {
	table     string
	callers   int
	contender string
}

type exactResult struct {
	admitted int64
	failed   int64 // calls that returned an error
	err      error // the first of them, or why the check could not run
}

func newBench(cfg config, srv *server) *bench {
	admin := redis.NewClient(&redis.Options{Addr: srv.addr})
	port, err := freePort()
	if err != nil {
		port = 1
	}
	b := &bench{
		cfg:     cfg,
		srv:     srv,
		admin:   admin,
		deadAt:  fmt.Sprintf("127.0.0.1:%d", port),
		samples: make(map[rowKey][]sample),
		exact:   make(map[string]exactResult),
	}
	b.version = srv.version(context.Background(), admin)
	return b
}

func (b *bench) close() { b.admin.Close() }

// env returns a setup environment whose clients count into sent.
func (b *bench) env(sent *counter) env {
	b.serial++
	return env{
		client: func() *redis.Client {
			c := redis.NewClient(&redis.Options{Addr: b.srv.addr})
			c.AddHook(sent)
			return c
		},
		dead: func() *redis.Client {
			return redis.NewClient(&redis.Options{
				Addr: b.deadAt, MaxRetries: -1, DialTimeout: 50 * time.Millisecond,
			})
		},
		prefix: fmt.Sprintf("b%d:", b.serial),
	}
}

func (b *bench) selected() []contender {
	var out []contender
	for _, c := range contenders() {
		if b.cfg.only == nil || b.cfg.only.MatchString(c.label()) || c.name == referenceName {
			out = append(out, c)
		}
	}
	return out
}

// runAll runs every case the configured number of times, interleaving the
// contenders so that drift of the machine touches all of them alike.
func (b *bench) runAll() {
	ctx := context.Background()
	all := b.selected()
	for run := 1; run <= b.cfg.runs; run++ {
		fmt.Fprintf(os.Stderr, "run %d of %d\n", run, b.cfg.runs)
		for _, bc := range cases() {
			for _, n := range b.cfg.callers {
				for _, c := range all {
					if c.missing != "" {
						continue
					}
					b.measureOne(ctx, bc, n, c)
				}
			}
		}
		b.runHTTP(ctx)
	}
	for _, c := range all {
		if c.missing == "" {
			b.checkExact(ctx, c)
		}
	}
}

func (b *bench) measureOne(ctx context.Context, bc benchCase, callers int, c contender) {
	key := rowKey{table: bc.name, callers: callers, contender: c.label()}
	fail := func(err error) {
		b.samples[key] = append(b.samples[key], sample{err: err})
		b.errs = append(b.errs, fmt.Sprintf("%s, %d callers, %s: %v", bc.name, callers, c.label(), err))
	}
	if err := b.admin.FlushAll(ctx).Err(); err != nil {
		fail(err)
		return
	}
	sent := new(counter)
	lim, done, err := c.setup(b.env(sent), bc.spec)
	if err != nil {
		fail(err)
		return
	}
	defer done()
	if bc.prepare != nil {
		if err := bc.prepare(ctx, lim); err != nil {
			fail(err)
			return
		}
	}

	ld := load{
		callers: callers, warmup: b.cfg.warmup, period: b.cfg.duration,
		key: bc.key, tolerate: !c.ours,
	}
	s := measure(lim, ld, sent, b.admin)
	if s.err != nil {
		fail(s.err)
		return
	}
	b.samples[key] = append(b.samples[key], s)
}

// checkExact runs the correctness check of one contender.
func (b *bench) checkExact(ctx context.Context, c contender) {
	if err := b.admin.FlushAll(ctx).Err(); err != nil {
		b.exact[c.label()] = exactResult{err: err}
		return
	}
	lim, done, err := c.setup(b.env(new(counter)), spec{capacity: exactCapacity, window: time.Hour})
	if err != nil {
		b.exact[c.label()] = exactResult{err: err}
		b.errs = append(b.errs, fmt.Sprintf("correctness of %s: %v", c.label(), err))
		return
	}
	defer done()
	n, failed, err := correctness(ctx, lim, 64)
	b.exact[c.label()] = exactResult{admitted: n, failed: failed, err: err}
	switch {
	case err != nil && c.ours:
		b.errs = append(b.errs, fmt.Sprintf("correctness of %s: %v", c.label(), err))
	case c.ours && n != exactCapacity:
		b.errs = append(b.errs, fmt.Sprintf("correctness of %s: admitted %d of %d, want %d",
			c.label(), n, 2*exactCapacity, exactCapacity))
	}
}

func (b *bench) failures() []string { return b.errs }

// label names a contender with its store, as the tables do.
func (c contender) label() string {
	return c.name + " [" + c.store + "]"
}

// quietLogger drops go-redis's own log lines, such as the failed dials of
// the client that points at a dead Redis on purpose.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
