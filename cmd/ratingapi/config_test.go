package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openclaw/ratelimit/bucket"
)

func TestDefaults(t *testing.T) {
	c, err := loadConfig(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.listenAddr != ":8080" || c.limit != bucket.PerMinute(500, 500) || c.redis != nil ||
		c.maxWait != 0 || c.shadow || c.maxKeys != 100_000 || c.apiKeys != nil ||
		c.logLevel != "info" || c.logFormat != "json" {
		t.Errorf("defaults %+v", c)
	}
}

func TestEverySetting(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	writeFile(t, keys, "# staff\nalpha, beta\n\ngamma\n")
	pw := filepath.Join(dir, "pw")
	writeFile(t, pw, "s3cret\n")

	c, err := loadConfig(map[string]string{
		"LISTEN_ADDR":                    "127.0.0.1:9000",
		"RATE_LIMIT_BUCKET_CAPACITY":     "20",
		"RATE_LIMIT_REFILL_RATE_PER_MIN": "1.5",
		"RATE_LIMIT_BACKEND":             "redis",
		"RATE_LIMIT_MAX_WAIT_MS":         "250",
		"RATE_LIMIT_SHADOW":              "true",
		"REDIS_HOST":                     "redis.internal",
		"REDIS_PORT":                     "6380",
		"REDIS_PASSWORD_FILE":            pw,
		"REDIS_KEY_PREFIX":               "app:rl",
		"REDIS_TIMEOUT_MS":               "50",
		"REDIS_RETRY_INTERVAL_MS":        "500",
		"FALLBACK_MAX_KEYS":              "1000",
		"API_KEYS_FILE":                  keys,
		"LOG_LEVEL":                      "DEBUG",
		"LOG_FORMAT":                     "text",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.limit != bucket.PerMinute(20, 1.5) || c.maxWait != 250*time.Millisecond ||
		!c.shadow || c.maxKeys != 1000 || c.logLevel != "debug" || c.logFormat != "text" {
		t.Errorf("config %+v", c)
	}
	if strings.Join(c.apiKeys, " ") != "alpha beta gamma" {
		t.Errorf("keys %q", c.apiKeys)
	}
	rc := c.redis
	if rc == nil || rc.single == nil || rc.single.Addr != "redis.internal:6380" ||
		rc.single.Password != "s3cret" || rc.prefix != "app:rl" ||
		rc.timeout != 50*time.Millisecond || rc.interval != 500*time.Millisecond ||
		!rc.single.ContextTimeoutEnabled {
		t.Errorf("redis %+v", rc)
	}
}

func TestRedisAddresses(t *testing.T) {
	t.Run("URL wins over host and port", func(t *testing.T) {
		c := mustLoad(t, map[string]string{
			"REDIS_URL": "rediss://user:pw@cache.example:6390/2", "REDIS_HOST": "other",
		})
		o := c.redis.single
		if o.Addr != "cache.example:6390" || o.Password != "pw" || o.Username != "user" ||
			o.DB != 2 || o.TLSConfig == nil || o.TLSConfig.ServerName != "cache.example" {
			t.Errorf("options %+v", o)
		}
	})
	t.Run("password for a URL without one", func(t *testing.T) {
		c := mustLoad(t, map[string]string{
			"REDIS_URL": "redis://cache:6379", "REDIS_PASSWORD": "pw",
		})
		if c.redis.single.Password != "pw" || c.redis.single.TLSConfig != nil {
			t.Errorf("options %+v", c.redis.single)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		c := mustLoad(t, map[string]string{
			"REDIS_CLUSTER_ADDRS": "10.0.0.1:7000, 10.0.0.2:7000,", "REDIS_PASSWORD": "pw",
		})
		o := c.redis.cluster
		if o == nil || strings.Join(o.Addrs, " ") != "10.0.0.1:7000 10.0.0.2:7000" ||
			o.Password != "pw" || !o.ContextTimeoutEnabled {
			t.Errorf("cluster %+v", o)
		}
	})
	t.Run("memory backend ignores Redis", func(t *testing.T) {
		c := mustLoad(t, map[string]string{"RATE_LIMIT_BACKEND": "memory", "REDIS_HOST": "r"})
		if c.redis != nil || !c.ignoredRedis {
			t.Errorf("config %+v", c)
		}
	})
}

func TestBadSettings(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	empty := filepath.Join(t.TempDir(), "empty")
	writeFile(t, empty, "\n")

	cases := []struct {
		env  map[string]string
		name string // the variable the error must name
	}{
		{map[string]string{"LISTEN_ADDR": "8080"}, "LISTEN_ADDR"},
		{map[string]string{"LISTEN_ADDR": ":http"}, "LISTEN_ADDR"},
		{map[string]string{"LISTEN_ADDR": ":70000"}, "LISTEN_ADDR"},
		{map[string]string{"RATE_LIMIT_BUCKET_CAPACITY": "lots"}, "RATE_LIMIT_BUCKET_CAPACITY"},
		{map[string]string{"RATE_LIMIT_BUCKET_CAPACITY": "0"}, "RATE_LIMIT_BUCKET_CAPACITY"},
		{map[string]string{"RATE_LIMIT_BUCKET_CAPACITY": "1.5"}, "RATE_LIMIT_BUCKET_CAPACITY"},
		{map[string]string{"RATE_LIMIT_BUCKET_CAPACITY": "99999999999999999999"},
			"RATE_LIMIT_BUCKET_CAPACITY"},
		{map[string]string{"RATE_LIMIT_REFILL_RATE_PER_MIN": "-1"}, "RATE_LIMIT_REFILL_RATE_PER_MIN"},
		{map[string]string{"RATE_LIMIT_REFILL_RATE_PER_MIN": "NaN"}, "RATE_LIMIT_REFILL_RATE_PER_MIN"},
		{map[string]string{"RATE_LIMIT_REFILL_RATE_PER_MIN": "Inf"}, "RATE_LIMIT_REFILL_RATE_PER_MIN"},
		{map[string]string{"RATE_LIMIT_BACKEND": "etcd"}, "RATE_LIMIT_BACKEND"},
		{map[string]string{"RATE_LIMIT_BACKEND": "redis"}, "RATE_LIMIT_BACKEND"},
		{map[string]string{"RATE_LIMIT_MAX_WAIT_MS": "-5"}, "RATE_LIMIT_MAX_WAIT_MS"},
		{map[string]string{"RATE_LIMIT_MAX_WAIT_MS": "600000"}, "RATE_LIMIT_MAX_WAIT_MS"},
		{map[string]string{"RATE_LIMIT_SHADOW": "maybe"}, "RATE_LIMIT_SHADOW"},
		{map[string]string{"REDIS_PORT": "0"}, "REDIS_PORT"},
		{map[string]string{"REDIS_PORT": "x"}, "REDIS_PORT"},
		{map[string]string{"REDIS_HOST": "bad host:1"}, "REDIS_HOST"},
		{map[string]string{"REDIS_URL": "http://example.com"}, "REDIS_URL"},
		{map[string]string{"REDIS_URL": "redis://cache:6379/notadb"}, "REDIS_URL"},
		{map[string]string{"REDIS_URL": "redis://u:pw@cache", "REDIS_PASSWORD": "x"},
			"REDIS_PASSWORD"},
		{map[string]string{"REDIS_CLUSTER_ADDRS": "a:1", "REDIS_URL": "redis://b"},
			"REDIS_CLUSTER_ADDRS"},
		{map[string]string{"REDIS_CLUSTER_ADDRS": "a"}, "REDIS_CLUSTER_ADDRS"},
		{map[string]string{"REDIS_CLUSTER_ADDRS": " , "}, "REDIS_CLUSTER_ADDRS"},
		{map[string]string{"REDIS_PASSWORD": "a", "REDIS_PASSWORD_FILE": empty},
			"REDIS_PASSWORD_FILE"},
		{map[string]string{"REDIS_PASSWORD_FILE": missing}, "REDIS_PASSWORD_FILE"},
		{map[string]string{"REDIS_PASSWORD_FILE": empty}, "REDIS_PASSWORD_FILE"},
		{map[string]string{"REDIS_KEY_PREFIX": "has space"}, "REDIS_KEY_PREFIX"},
		{map[string]string{"REDIS_TIMEOUT_MS": "0"}, "REDIS_TIMEOUT_MS"},
		{map[string]string{"REDIS_RETRY_INTERVAL_MS": "1"}, "REDIS_RETRY_INTERVAL_MS"},
		{map[string]string{"FALLBACK_MAX_KEYS": "0"}, "FALLBACK_MAX_KEYS"},
		{map[string]string{"API_KEYS": " , ,"}, "API_KEYS"},
		{map[string]string{"API_KEYS": "a,b\x01c"}, "API_KEYS"},
		{map[string]string{"API_KEYS": strings.Repeat("k", 257)}, "API_KEYS"},
		{map[string]string{"API_KEYS": "a", "API_KEYS_FILE": empty}, "API_KEYS_FILE"},
		{map[string]string{"API_KEYS_FILE": missing}, "API_KEYS_FILE"},
		{map[string]string{"API_KEYS_FILE": empty}, "API_KEYS_FILE"},
		{map[string]string{"LOG_LEVEL": "verbose"}, "LOG_LEVEL"},
		{map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(tc.env)
			if err == nil {
				t.Fatalf("%v was accepted", tc.env)
			}
			var cerr *configError
			if !errors.As(err, &cerr) || cerr.name != tc.name {
				t.Errorf("%v: error %q does not name %s", tc.env, err, tc.name)
			}
		})
	}
}

func TestSecretsStayOutOfErrors(t *testing.T) {
	cases := []map[string]string{
		{"REDIS_URL": "redis://user:hunter2secret@cache:6379/x"},
		{"REDIS_URL": "redis://user:hunter2secret@cache:6379", "REDIS_PASSWORD": "hunter2secret"},
		{"API_KEYS": "hunter2secret,bad\x7fkey"},
	}
	for _, env := range cases {
		_, err := loadConfig(env)
		if err == nil {
			t.Fatalf("%v was accepted", env)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "bad") {
			t.Errorf("error %q repeats a secret", err)
		}
	}
}

func mustLoad(t *testing.T, env map[string]string) config {
	t.Helper()
	c, err := loadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
