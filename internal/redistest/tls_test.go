package redistest

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestTLSServer(t *testing.T) {
	ca := NewCA(t)
	s := Start(t, WithTLS(ca), WithArgs("--requirepass", "s3cret"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	trusted := s.Client(t, func(o *redis.Options) {
		o.TLSConfig = ca.ClientConfig()
		o.Password = "s3cret"
	})
	if err := trusted.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING over TLS with the CA: %v", err)
	}

	// A client that does not trust the CA must not get through.
	untrusted := s.Client(t, func(o *redis.Options) {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		o.Password = "s3cret"
		o.MaxRetries = -1
	})
	if err := untrusted.Ping(ctx).Err(); err == nil {
		t.Fatal("PING without trusting the CA succeeded")
	}

	// Plain TCP gets no answer from a TLS port.
	plain := s.Client(t, func(o *redis.Options) {
		o.Password = "s3cret"
		o.MaxRetries = -1
		o.ReadTimeout = 500 * time.Millisecond
	})
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("PING in plain text to the TLS port succeeded")
	}
}
