package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
)

// redisTLS turns TLS on where the environment asks for it and sets the
// roots it trusts. A rediss:// URL asks for TLS itself; REDIS_TLS=true asks
// for it on REDIS_HOST and REDIS_CLUSTER_ADDRS, which have no scheme. With
// REDIS_TLS_CA_FILE set, roots (its certificates) are the only ones
// trusted; without it, the system's are.
func (rc *redisConfig) redisTLS(e environment, roots *x509.CertPool) error {
	if e.RedisTLS {
		switch {
		case rc.cluster != nil:
			rc.cluster.TLSConfig = newTLSConfig()
		case rc.single.TLSConfig != nil:
			// A rediss:// URL turned it on already.
		case e.RedisURL != "":
			return bad("REDIS_TLS", "is true, but REDIS_URL starts with redis://; "+
				"use rediss:// for TLS")
		default:
			rc.single.TLSConfig = newTLSConfig()
		}
	}

	conf := rc.tlsConfig()
	switch {
	case roots == nil:
		return nil
	case conf == nil:
		return bad("REDIS_TLS_CA_FILE", "is set, but TLS is off: use a rediss:// "+
			"REDIS_URL, or REDIS_TLS=true")
	}
	conf.RootCAs = roots
	return nil
}

// newTLSConfig returns the TLS settings of a connection without a URL.
// The server name to verify comes from each address as it is dialed, so
// that every node of a Cluster is checked against its own name.
func newTLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12}
}

// tlsConfig returns the TLS settings of the client, or nil when it does
// not use TLS.
func (rc *redisConfig) tlsConfig() *tls.Config {
	if rc.cluster != nil {
		return rc.cluster.TLSConfig
	}
	return rc.single.TLSConfig
}

// loadCAFile returns the certificates of the PEM file named by
// REDIS_TLS_CA_FILE, or nil when it is unset. Blocks that are not
// certificates are skipped; a certificate that does not parse, or a file
// with none, is a mistake.
func loadCAFile(file string) (*x509.CertPool, error) {
	const name = "REDIS_TLS_CA_FILE"
	if file == "" {
		return nil, nil
	}
	rest, err := os.ReadFile(file)
	if err != nil {
		return nil, bad(name, "cannot be read: %v", unwrapPath(err))
	}

	pool := x509.NewCertPool()
	n := 0
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, bad(name, "certificate %d does not parse: %v", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, bad(name, "holds no PEM certificate")
	}
	return pool, nil
}
