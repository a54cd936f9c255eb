package main

import (
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Bounds of the Redis variables.
const (
	maxTimeout     = time.Minute
	minInterval    = 10 * time.Millisecond
	maxInterval    = time.Hour
	maxPrefixBytes = 128
)

// loadRedis returns how to reach Redis, or nil when no address is set.
func loadRedis(e environment) (*redisConfig, error) {
	if e.RedisTimeoutMS < 1 || e.RedisTimeoutMS > maxTimeout.Milliseconds() {
		return nil, bad("REDIS_TIMEOUT_MS", "must be from 1 to %d", maxTimeout.Milliseconds())
	}
	interval := time.Duration(e.RedisRetryMS) * time.Millisecond
	if e.RedisRetryMS < minInterval.Milliseconds() || interval > maxInterval {
		return nil, bad("REDIS_RETRY_INTERVAL_MS", "must be from %d to %d",
			minInterval.Milliseconds(), maxInterval.Milliseconds())
	}
	if e.RedisPort < 1 || e.RedisPort > 65535 {
		return nil, bad("REDIS_PORT", "must be from 1 to 65535")
	}
	prefix := e.RedisKeyPrefix
	if prefix == "" || len(prefix) > maxPrefixBytes || strings.ContainsAny(prefix, " \t\r\n") {
		return nil, bad("REDIS_KEY_PREFIX", "must be 1 to %d bytes without spaces", maxPrefixBytes)
	}
	password, err := loadPassword(e.RedisPassword, e.RedisPasswordFile)
	if err != nil {
		return nil, err
	}
	roots, err := loadCAFile(e.RedisTLSCAFile)
	if err != nil {
		return nil, err
	}

	rc := &redisConfig{
		prefix:   prefix,
		timeout:  time.Duration(e.RedisTimeoutMS) * time.Millisecond,
		interval: interval,
	}
	switch {
	case e.RedisClusterAddrs != "":
		if e.RedisURL != "" || e.RedisHost != "" {
			return nil, bad("REDIS_CLUSTER_ADDRS", "is set together with REDIS_URL or "+
				"REDIS_HOST; set one")
		}
		addrs, err := clusterAddrs(e.RedisClusterAddrs)
		if err != nil {
			return nil, err
		}
		rc.cluster = &redis.ClusterOptions{Addrs: addrs, Password: password}
	case e.RedisURL != "":
		// The URL may hold a password: no error repeats it.
		opts, err := redis.ParseURL(e.RedisURL)
		if err != nil {
			return nil, bad("REDIS_URL", "is not a valid redis:// or rediss:// URL")
		}
		if password != "" && opts.Password != "" {
			return nil, bad("REDIS_PASSWORD", "is set, and REDIS_URL holds a password too")
		}
		if password != "" {
			opts.Password = password
		}
		rc.single = opts
	case e.RedisHost != "":
		if !validHost(e.RedisHost) {
			return nil, bad("REDIS_HOST", "%q is not a host name or IP address", e.RedisHost)
		}
		addr := net.JoinHostPort(e.RedisHost, strconv.Itoa(e.RedisPort))
		rc.single = &redis.Options{Addr: addr, Password: password}
	default:
		return nil, nil
	}
	if err := rc.redisTLS(e, roots); err != nil {
		return nil, err
	}
	rc.tune()
	return rc, nil
}

// tune sets the client timeouts: each call is bounded by the deadline of
// its context, which the fallback store sets to REDIS_TIMEOUT_MS.
func (rc *redisConfig) tune() {
	if o := rc.single; o != nil {
		o.ContextTimeoutEnabled = true
		o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = rc.timeout, rc.timeout, rc.timeout
		o.DialTimeout = max(rc.timeout, time.Second)
		o.MaxRetries = 1
	}
	if o := rc.cluster; o != nil {
		o.ContextTimeoutEnabled = true
		o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = rc.timeout, rc.timeout, rc.timeout
		o.DialTimeout = max(rc.timeout, time.Second)
		o.MaxRetries = 1
	}
}

// addr describes where Redis is, without any password, for logs.
func (rc *redisConfig) addr() string {
	if rc.cluster != nil {
		return strings.Join(rc.cluster.Addrs, ",")
	}
	return rc.single.Addr
}

// client returns a new client for the configuration.
func (rc *redisConfig) client() redis.UniversalClient {
	if rc.cluster != nil {
		return redis.NewClusterClient(rc.cluster)
	}
	return redis.NewClient(rc.single)
}

// validHost reports whether host is an IP address or a plausible host
// name.
func validHost(host string) bool {
	if net.ParseIP(host) != nil {
		return true
	}
	if host == "" || len(host) > 253 {
		return false
	}
	for _, c := range host {
		ok := c == '-' || c == '.' || c == '_' ||
			'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !ok {
			return false
		}
	}
	return true
}

func clusterAddrs(list string) ([]string, error) {
	var addrs []string
	for addr := range strings.SplitSeq(list, ",") {
		addr = strings.TrimSpace(addr)
		if addr == "" {
			continue
		}
		if err := checkAddr("REDIS_CLUSTER_ADDRS", addr, false); err != nil {
			return nil, err
		}
		addrs = append(addrs, addr)
	}
	if len(addrs) == 0 {
		return nil, bad("REDIS_CLUSTER_ADDRS", "holds no address")
	}
	return addrs, nil
}

// loadPassword returns the password from REDIS_PASSWORD or the file named
// by REDIS_PASSWORD_FILE, without the file's final line break.
func loadPassword(password, file string) (string, error) {
	if file == "" {
		return password, nil
	}
	if password != "" {
		return "", bad("REDIS_PASSWORD_FILE", "is set together with REDIS_PASSWORD; set one")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", bad("REDIS_PASSWORD_FILE", "cannot be read: %v", unwrapPath(err))
	}
	password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if password == "" {
		return "", bad("REDIS_PASSWORD_FILE", "names an empty file")
	}
	return password, nil
}

// unwrapPath drops the path from an error of package os, leaving the
// cause ("no such file or directory").
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
