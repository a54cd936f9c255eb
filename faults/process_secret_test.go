package faults

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/openclaw/ratelimit/internal/redistest"
	"github.com/openclaw/ratelimit/internal/waittest"
	"github.com/redis/go-redis/v9"
)

// TestProcessTLSAndSecrets runs two Rating API processes on a Redis that
// wants TLS and a password: one with the right password over rediss://,
// trusting the test CA, one with a wrong password. The first decides with
// Redis; the second says why in a rate_limit_fallback line and serves from
// memory. Neither the password nor the raw API key appears in a log line,
// a metric or a Redis key name.
func TestProcessTLSAndSecrets(t *testing.T) {
	ca := redistest.NewCA(t)
	srv := redistest.Start(t, redistest.WithTLS(ca), redistest.WithArgs("--requirepass", secret))
	env := func(password string) map[string]string {
		e := apiEnv(fmt.Sprintf("rediss://:%s@%s", password, srv.Addr()), 5)
		// The test CA is the only root the binary trusts for Redis.
		e["REDIS_TLS_CA_FILE"] = ca.CAFile
		// A cold TLS connection must fit in one deadline.
		e["REDIS_TIMEOUT_MS"] = "2000"
		e["API_KEYS"] = rawKey
		// Debug lines are searched for secrets too.
		e["LOG_LEVEL"] = "debug"
		return e
	}
	good := startAPI(t, env(secret))
	wrong := startAPI(t, env("wrong-"+secret))

	if got := good.rateUntilRefused(rawKey, 20); got != 5 {
		t.Fatalf("admitted %d over TLS, want 5", got)
	}
	if good.fallbackActive() {
		t.Fatalf("fallback on with the right password:\n%s", good.Output())
	}
	allowed := `ratelimit_decisions_total{backend="redis",result="allowed"} 5`
	if !strings.Contains(good.metrics(), allowed) {
		t.Fatalf("metrics do not count 5 allowed decisions by Redis:\n%s", good.metrics())
	}

	if got := wrong.rateUntilRefused(rawKey, 20); got != 5 {
		t.Fatalf("admitted %d from memory, want 5", got)
	}
	waittest.Until(t, "the wrong password to turn the fallback on", wrong.fallbackActive)
	lines := wrong.LogLines("rate_limit_fallback")
	if len(lines) == 0 {
		t.Fatalf("no rate_limit_fallback line with a wrong password:\n%s", wrong.Output())
	}
	reason, _ := lines[0]["reason"].(string)
	if !strings.Contains(reason, "WRONGPASS") && !strings.Contains(reason, "invalid password") {
		t.Errorf("fallback reason %q does not say the password is wrong", reason)
	}

	// An unknown key and a malformed one must not leak either.
	for _, app := range []*api{good, wrong} {
		app.rate("sk-unknown-"+rawKey, "item")
	}

	for name, app := range map[string]*api{"right": good, "wrong": wrong} {
		if text := app.Output(); strings.Contains(text, secret) || strings.Contains(text, rawKey) {
			t.Errorf("the log of the process with the %s password holds a secret:\n%s", name, text)
		}
		if m := app.metrics(); strings.Contains(m, secret) || strings.Contains(m, rawKey) {
			t.Errorf("the metrics of the process with the %s password hold a secret", name)
		}
	}
	client := srv.Client(t, func(o *redis.Options) {
		o.TLSConfig = ca.ClientConfig()
		o.Password = secret
	})
	names, err := client.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatalf("KEYS *: %v", err)
	}
	if len(names) == 0 {
		t.Fatal("no key in Redis after decisions over TLS")
	}
	for _, name := range names {
		if strings.Contains(name, secret) || strings.Contains(name, rawKey) {
			t.Errorf("Redis key %q holds a secret", name)
		}
	}
	if code := good.rate("no-such-key", "item"); code != http.StatusUnauthorized {
		t.Errorf("a key outside API_KEYS got %d, want 401", code)
	}
}
