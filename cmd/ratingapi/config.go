package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"
	"github.com/redis/go-redis/v9"

	"github.com/openclaw/ratelimit/bucket"
	"github.com/openclaw/ratelimit/middleware/ratelimit"
)

// environment is the configuration as the environment gives it. Each
// field names its variable; defaults are those of the README.
type environment struct {
	ListenAddr   string  `env:"LISTEN_ADDR" envDefault:":8080"`
	Capacity     int64   `env:"RATE_LIMIT_BUCKET_CAPACITY" envDefault:"500"`
	RefillPerMin float64 `env:"RATE_LIMIT_REFILL_RATE_PER_MIN" envDefault:"500"`
	Backend      string  `env:"RATE_LIMIT_BACKEND" envDefault:"auto"`
	MaxWaitMS    int64   `env:"RATE_LIMIT_MAX_WAIT_MS" envDefault:"0"`
	Shadow       bool    `env:"RATE_LIMIT_SHADOW" envDefault:"false"`

	RedisHost         string `env:"REDIS_HOST"`
	RedisPort         int    `env:"REDIS_PORT" envDefault:"6379"`
	RedisURL          string `env:"REDIS_URL"`
	RedisClusterAddrs string `env:"REDIS_CLUSTER_ADDRS"`
	RedisPassword     string `env:"REDIS_PASSWORD"`
	RedisPasswordFile string `env:"REDIS_PASSWORD_FILE"`
	RedisTLS          bool   `env:"REDIS_TLS" envDefault:"false"`
	RedisTLSCAFile    string `env:"REDIS_TLS_CA_FILE"`
	RedisKeyPrefix    string `env:"REDIS_KEY_PREFIX" envDefault:"openclaw:bucket"`
	RedisTimeoutMS    int64  `env:"REDIS_TIMEOUT_MS" envDefault:"100"`
	RedisRetryMS      int64  `env:"REDIS_RETRY_INTERVAL_MS" envDefault:"1000"`
	FallbackMaxKeys   int    `env:"FALLBACK_MAX_KEYS" envDefault:"100000"`

	APIKeys     string `env:"API_KEYS"`
	APIKeysFile string `env:"API_KEYS_FILE"`

	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`
}

// config is the checked configuration the program runs with.
type config struct {
	listenAddr   string
	limit        bucket.Limit
	refillPerMin float64
	maxWait      time.Duration
	shadow       bool

	// redis is nil when the memory store decides alone.
	redis        *redisConfig
	maxKeys      int
	apiKeys      []string // nil accepts any key
	logLevel     string
	logFormat    string
	ignoredRedis bool // Redis is configured but RATE_LIMIT_BACKEND=memory
}

// redisConfig says how to reach Redis. Exactly one of single and cluster
// is set.
type redisConfig struct {
	single   *redis.Options
	cluster  *redis.ClusterOptions
	prefix   string
	timeout  time.Duration
	interval time.Duration
}

// configError is a configuration mistake: the variable and what is wrong.
// It never holds the value of a secret.
type configError struct {
	name string
	msg  string
}

func (e *configError) Error() string { return e.name + ": " + e.msg }

func bad(name, format string, args ...any) error {
	return &configError{name: name, msg: fmt.Sprintf(format, args...)}
}

// Bounds of the numeric variables.
const (
	maxCapacity   = 1_000_000_000
	maxRatePerMin = 1e12
	maxWaitLimit  = time.Minute
	maxKeysLimit  = 100_000_000
)

// loadConfig reads and checks the configuration in environ.
func loadConfig(environ map[string]string) (config, error) {
	var e environment
	if err := env.ParseWithOptions(&e, env.Options{Environment: environ}); err != nil {
		return config{}, parseError(err, environ)
	}

	c := config{
		listenAddr: e.ListenAddr,
		shadow:     e.Shadow,
		maxKeys:    e.FallbackMaxKeys,
		logLevel:   strings.ToLower(e.LogLevel),
		logFormat:  strings.ToLower(e.LogFormat),
	}
	if err := checkAddr("LISTEN_ADDR", e.ListenAddr, true); err != nil {
		return config{}, err
	}
	if e.Capacity < 1 || e.Capacity > maxCapacity {
		return config{}, bad("RATE_LIMIT_BUCKET_CAPACITY", "must be from 1 to %d", maxCapacity)
	}
	rate := e.RefillPerMin
	if math.IsNaN(rate) || rate < 0 || rate > maxRatePerMin {
		return config{}, bad("RATE_LIMIT_REFILL_RATE_PER_MIN", "must be from 0 to %g", maxRatePerMin)
	}
	c.limit, c.refillPerMin = bucket.PerMinute(e.Capacity, rate), rate
	if e.MaxWaitMS < 0 || e.MaxWaitMS > maxWaitLimit.Milliseconds() {
		return config{}, bad("RATE_LIMIT_MAX_WAIT_MS", "must be from 0 to %d",
			maxWaitLimit.Milliseconds())
	}
	c.maxWait = time.Duration(e.MaxWaitMS) * time.Millisecond
	if e.FallbackMaxKeys < 1 || e.FallbackMaxKeys > maxKeysLimit {
		return config{}, bad("FALLBACK_MAX_KEYS", "must be from 1 to %d", maxKeysLimit)
	}
	if err := checkLogging(c.logLevel, c.logFormat); err != nil {
		return config{}, err
	}

	keys, err := loadAPIKeys(e.APIKeys, e.APIKeysFile)
	if err != nil {
		return config{}, err
	}
	c.apiKeys = keys

	rc, err := loadRedis(e)
	if err != nil {
		return config{}, err
	}
	switch strings.ToLower(e.Backend) {
	case "auto":
		c.redis = rc
	case "redis":
		if rc == nil {
			return config{}, bad("RATE_LIMIT_BACKEND",
				"is redis, but none of REDIS_HOST, REDIS_URL, REDIS_CLUSTER_ADDRS is set")
		}
		c.redis = rc
	case "memory":
		c.ignoredRedis = rc != nil
	default:
		return config{}, bad("RATE_LIMIT_BACKEND", "must be auto, redis or memory")
	}
	return c, nil
}

// parseError names the variable behind an error of the env library.
func parseError(err error, environ map[string]string) error {
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) > 0 {
		err = agg.Errors[0]
	}
	var perr env.ParseError
	if !errors.As(err, &perr) {
		return fmt.Errorf("environment: %w", err)
	}
	field, ok := reflect.TypeOf(environment{}).FieldByName(perr.Name)
	if !ok {
		return fmt.Errorf("environment: %w", err)
	}
	name, _, _ := strings.Cut(field.Tag.Get("env"), ",")
	kind := "a number"
	switch perr.Type.Kind() {
	case reflect.Bool:
		kind = "true or false"
	case reflect.Int, reflect.Int64:
		kind = "a whole number"
	}
	return bad(name, "%q is not %s", environ[name], kind)
}

// checkAddr checks a host:port address. The host may be empty when
// anyHost is set, to listen on every interface.
func checkAddr(name, addr string, anyHost bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return bad(name, "%q is not host:port", addr)
	}
	if host == "" && !anyHost || host != "" && !validHost(host) {
		return bad(name, "%q has no valid host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return bad(name, "%q has no valid port", addr)
	}
	return nil
}

func checkLogging(level, format string) error {
	switch level {
	case "debug", "info", "warn", "error":
	default:
		return bad("LOG_LEVEL", "must be debug, info, warn or error")
	}
	switch format {
	case "json", "text":
	default:
		return bad("LOG_FORMAT", "must be json or text")
	}
	return nil
}

// loadAPIKeys reads the accepted keys from API_KEYS (comma-separated) or
// API_KEYS_FILE (commas or new lines; lines starting with # are
// comments). Neither set means any key is accepted.
func loadAPIKeys(list, file string) ([]string, error) {
	name, text := "API_KEYS", list
	switch {
	case list != "" && file != "":
		return nil, bad("API_KEYS_FILE", "is set together with API_KEYS; set one")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, bad("API_KEYS_FILE", "cannot be read: %v", unwrapPath(err))
		}
		name, text = "API_KEYS_FILE", string(b)
	case list == "":
		return nil, nil
	}

	var keys []string
	for line := range strings.Lines(text) {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for key := range strings.SplitSeq(line, ",") {
			key = strings.TrimSpace(key)
			if key == "" {
				continue
			}
			if ratelimit.ValidKey(key) != nil {
				return nil, bad(name, "key %d is empty, longer than %d bytes, or holds "+
					"a control character", len(keys)+1, ratelimit.MaxKeyBytes)
			}
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, bad(name, "holds no key")
	}
	return keys, nil
}
