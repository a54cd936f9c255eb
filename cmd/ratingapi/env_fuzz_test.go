package main

import (
	"errors"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// envNames returns the names of every variable the program reads.
func envNames() map[string]bool {
	names := make(map[string]bool)
	typ := reflect.TypeOf(environment{})
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("env"), ",")
		names[name] = true
	}
	return names
}

// FuzzEnvironment loads configurations made of whatever lines the fuzzer
// writes, NAME=value each, plus a password. Loading must never panic; a
// refusal must name a variable the program reads and never repeat a
// secret (the password, the password of REDIS_URL, an API key); an
// accepted configuration must hold what the variables said.
func FuzzEnvironment(f *testing.F) {
	for _, seed := range [][2]string{
		{"", ""},
		{"RATE_LIMIT_BUCKET_CAPACITY=20\nRATE_LIMIT_REFILL_RATE_PER_MIN=1.5", ""},
		{"RATE_LIMIT_BUCKET_CAPACITY=0", ""},
		{"RATE_LIMIT_BUCKET_CAPACITY=-1", ""},
		{"RATE_LIMIT_BUCKET_CAPACITY=99999999999999999999", ""},
		{"RATE_LIMIT_BUCKET_CAPACITY=1e3", ""},
		{"RATE_LIMIT_REFILL_RATE_PER_MIN=NaN", ""},
		{"RATE_LIMIT_REFILL_RATE_PER_MIN=+Inf", ""},
		{"RATE_LIMIT_REFILL_RATE_PER_MIN=-0", ""},
		{"RATE_LIMIT_BACKEND=redis", ""},
		{"RATE_LIMIT_BACKEND=REDIS\nREDIS_HOST=127.0.0.1", "pw-secret-1"},
		{"RATE_LIMIT_SHADOW=yes", ""},
		{"RATE_LIMIT_MAX_WAIT_MS=60001", ""},
		{"REDIS_URL=rediss://:urlsecret99@127.0.0.1:6380/0", ""},
		{"REDIS_URL=rediss://:urlsecret99@127.0.0.1:6380/0", "pw-secret-2"},
		{"REDIS_URL=redis://user:urlsecret99@[::1", ""},
		{"REDIS_URL=http://127.0.0.1", ""},
		{"REDIS_HOST=127.0.0.1\nREDIS_PORT=70000", ""},
		{"REDIS_HOST=bad host\x00", ""},
		{"REDIS_CLUSTER_ADDRS=127.0.0.1:7000,127.0.0.1:7001,,", ""},
		{"REDIS_CLUSTER_ADDRS=127.0.0.1:7000\nREDIS_URL=redis://127.0.0.1", ""},
		{"REDIS_HOST=h\nREDIS_TIMEOUT_MS=0", ""},
		{"REDIS_HOST=h\nREDIS_RETRY_INTERVAL_MS=1", ""},
		{"REDIS_HOST=h\nREDIS_KEY_PREFIX=a b", ""},
		{"REDIS_HOST=h\nREDIS_TLS=true", ""},
		{"REDIS_CLUSTER_ADDRS=127.0.0.1:7000\nREDIS_TLS=1", ""},
		{"REDIS_URL=redis://h\nREDIS_TLS=true", ""},
		{"REDIS_URL=rediss://h\nREDIS_TLS=false", ""},
		{"REDIS_HOST=h\nREDIS_TLS=yes", ""},
		{"FALLBACK_MAX_KEYS=0", ""},
		{"API_KEYS=key-one-secret,key\x01two", ""},
		{"API_KEYS=" + strings.Repeat("k", 300), ""},
		{"API_KEYS= , ,", ""},
		{"LISTEN_ADDR=:99999", ""},
		{"LISTEN_ADDR=nohostport", ""},
		{"LOG_LEVEL=verbose\nLOG_FORMAT=xml", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	names := envNames()

	f.Fuzz(func(t *testing.T, blob, password string) {
		environ := environMap(strings.Split(blob, "\n"))
		// Files are not the fuzzer's to read.
		delete(environ, "API_KEYS_FILE")
		delete(environ, "REDIS_PASSWORD_FILE")
		delete(environ, "REDIS_TLS_CA_FILE")
		if password != "" {
			environ["REDIS_PASSWORD"] = password
		}

		cfg, err := loadConfig(environ)
		if err != nil {
			checkRefusal(t, err, environ, names)
			return
		}
		checkAccepted(t, cfg, environ)
	})
}

// checkRefusal holds a configuration error to naming a variable and to
// repeating no secret.
func checkRefusal(t *testing.T, err error, environ map[string]string, names map[string]bool) {
	t.Helper()
	msg := err.Error()
	var ce *configError
	if !errors.As(err, &ce) || !names[ce.name] {
		t.Fatalf("error %q names no variable the program reads", msg)
	}

	secrets := []string{environ["REDIS_PASSWORD"]}
	if u, perr := url.Parse(environ["REDIS_URL"]); perr == nil && u.User != nil {
		p, _ := u.User.Password()
		secrets = append(secrets, p)
	}
	for k := range strings.SplitSeq(environ["API_KEYS"], ",") {
		secrets = append(secrets, strings.TrimSpace(k))
	}
	for _, s := range secrets {
		if len(s) < 6 || !strings.Contains(msg, s) {
			continue
		}
		// The secret may also be the value of a variable that may be
		// echoed, or the name of one.
		echoed := strings.Contains(ce.name, s)
		for name, v := range environ {
			if name != "REDIS_PASSWORD" && name != "REDIS_URL" && name != "API_KEYS" &&
				strings.Contains(v, s) {
				echoed = true
			}
		}
		if !echoed {
			t.Fatalf("error %q repeats a secret", msg)
		}
	}
}

// checkAccepted holds an accepted configuration to what the variables
// said.
func checkAccepted(t *testing.T, cfg config, environ map[string]string) {
	t.Helper()
	if err := cfg.limit.Validate(); err != nil {
		t.Fatalf("accepted an invalid limit %+v: %v", cfg.limit, err)
	}
	// An empty value counts as unset, so the default holds.
	if v := environ["RATE_LIMIT_BUCKET_CAPACITY"]; v != "" {
		want, err := strconv.ParseInt(v, 10, 64)
		if err != nil || cfg.limit.Capacity != want {
			t.Fatalf("capacity %q became %d", v, cfg.limit.Capacity)
		}
	}
	if v := environ["RATE_LIMIT_REFILL_RATE_PER_MIN"]; v != "" {
		want, err := strconv.ParseFloat(v, 64)
		if err != nil || cfg.refillPerMin != want {
			t.Fatalf("refill %q became %v", v, cfg.refillPerMin)
		}
	}
	if cfg.maxWait < 0 || cfg.maxKeys < 1 {
		t.Fatalf("accepted max wait %v and max keys %d", cfg.maxWait, cfg.maxKeys)
	}
	if rc := cfg.redis; rc != nil {
		if (rc.single == nil) == (rc.cluster == nil) {
			t.Fatalf("redis config has single %v and cluster %v", rc.single, rc.cluster)
		}
		if rc.timeout <= 0 || rc.interval <= 0 || rc.prefix == "" {
			t.Fatalf("redis config %+v", rc)
		}
		tlsOn, _ := strconv.ParseBool(environ["REDIS_TLS"])
		tlsOn = tlsOn || strings.HasPrefix(strings.ToLower(environ["REDIS_URL"]), "rediss:")
		if conf := rc.tlsConfig(); (conf != nil) != tlsOn || conf != nil && conf.RootCAs != nil {
			t.Fatalf("REDIS_TLS %q and REDIS_URL %q gave TLS settings %v",
				environ["REDIS_TLS"], environ["REDIS_URL"], conf)
		}
	}
	addressed := environ["REDIS_HOST"] != "" || environ["REDIS_URL"] != "" ||
		environ["REDIS_CLUSTER_ADDRS"] != ""
	if cfg.redis != nil && !addressed {
		t.Fatal("a Redis store with no Redis address set")
	}
}
