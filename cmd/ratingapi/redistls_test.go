package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/openclaw/ratelimit/internal/redistest"
)

func TestRedisTLS(t *testing.T) {
	ca, other := redistest.NewCA(t), redistest.NewCA(t)
	both := filepath.Join(t.TempDir(), "both.pem")
	writeFile(t, both, readFile(t, ca.CAFile)+readFile(t, ca.KeyFile)+readFile(t, other.CAFile))
	bothPool := ca.Pool.Clone()
	bothPool.AppendCertsFromPEM([]byte(readFile(t, other.CAFile)))

	cases := []struct {
		name   string
		env    map[string]string
		server string         // the name to verify; empty takes it from the address
		roots  *x509.CertPool // nil trusts the system roots
	}{
		{"rediss URL with a CA file", map[string]string{
			"REDIS_URL": "rediss://cache.example:6390", "REDIS_TLS_CA_FILE": ca.CAFile,
		}, "cache.example", ca.Pool},
		{"rediss URL alone", map[string]string{
			"REDIS_URL": "rediss://cache.example:6390",
		}, "cache.example", nil},
		{"rediss URL and REDIS_TLS", map[string]string{
			"REDIS_URL": "rediss://cache.example:6390", "REDIS_TLS": "true",
		}, "cache.example", nil},
		{"host and REDIS_TLS", map[string]string{
			"REDIS_HOST": "cache.example", "REDIS_TLS": "true",
		}, "", nil},
		{"host, REDIS_TLS and a bundle", map[string]string{
			"REDIS_HOST": "cache.example", "REDIS_TLS": "true", "REDIS_TLS_CA_FILE": both,
		}, "", bothPool},
		{"cluster, REDIS_TLS and a CA file", map[string]string{
			"REDIS_CLUSTER_ADDRS": "10.0.0.1:7000,10.0.0.2:7000", "REDIS_TLS": "true",
			"REDIS_TLS_CA_FILE": ca.CAFile,
		}, "", ca.Pool},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conf := mustLoad(t, tc.env).redis.tlsConfig()
			if conf == nil {
				t.Fatal("TLS is off")
			}
			if conf.ServerName != tc.server || conf.MinVersion != tls.VersionTLS12 ||
				conf.InsecureSkipVerify {
				t.Errorf("server name %q, min version %x, skip verify %v", conf.ServerName,
					conf.MinVersion, conf.InsecureSkipVerify)
			}
			switch {
			case tc.roots == nil && conf.RootCAs != nil:
				t.Error("roots set, want the system roots")
			case tc.roots != nil && !tc.roots.Equal(conf.RootCAs):
				t.Error("roots are not the certificates of the CA file")
			}
		})
	}

	for _, env := range []map[string]string{
		{"REDIS_HOST": "cache.example"},
		{"REDIS_URL": "redis://cache.example"},
		{"REDIS_CLUSTER_ADDRS": "10.0.0.1:7000", "REDIS_TLS": "false"},
	} {
		if conf := mustLoad(t, env).redis.tlsConfig(); conf != nil {
			t.Errorf("%v: TLS is on", env)
		}
	}
}

func TestRedisTLSMistakes(t *testing.T) {
	ca := redistest.NewCA(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	empty := filepath.Join(dir, "empty.pem")
	writeFile(t, empty, "")
	keyOnly := ca.KeyFile
	corrupt := filepath.Join(dir, "corrupt.pem")
	writeFile(t, corrupt, readFile(t, ca.CAFile)+
		"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")

	cases := []struct {
		name string
		env  map[string]string
		want string // the variable the error must name
	}{
		{"missing file", map[string]string{"REDIS_TLS_CA_FILE": missing}, "REDIS_TLS_CA_FILE"},
		{"empty file", map[string]string{"REDIS_URL": "rediss://c", "REDIS_TLS_CA_FILE": empty},
			"REDIS_TLS_CA_FILE"},
		{"a key, no certificate", map[string]string{
			"REDIS_URL": "rediss://c", "REDIS_TLS_CA_FILE": keyOnly}, "REDIS_TLS_CA_FILE"},
		{"a certificate that does not parse", map[string]string{
			"REDIS_URL": "rediss://c", "REDIS_TLS_CA_FILE": corrupt}, "REDIS_TLS_CA_FILE"},
		{"CA file with redis://", map[string]string{
			"REDIS_URL": "redis://c", "REDIS_TLS_CA_FILE": ca.CAFile}, "REDIS_TLS_CA_FILE"},
		{"CA file with a host, TLS off", map[string]string{
			"REDIS_HOST": "c", "REDIS_TLS_CA_FILE": ca.CAFile}, "REDIS_TLS_CA_FILE"},
		{"REDIS_TLS with redis://", map[string]string{
			"REDIS_URL": "redis://c", "REDIS_TLS": "true"}, "REDIS_TLS"},
		{"REDIS_TLS not a boolean", map[string]string{
			"REDIS_HOST": "c", "REDIS_TLS": "maybe"}, "REDIS_TLS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(tc.env)
			var cerr *configError
			if !errors.As(err, &cerr) || cerr.name != tc.want {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
