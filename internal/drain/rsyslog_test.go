package drain

import (
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"net/netip"
	"time"
)

func testSenderConfig(pool *x509.CertPool, buffer int) SenderConfig {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	return SenderConfig{BufferBytes: buffer, Dialer: NewDialer(loopback),
		TLS:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool},
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}
}

func poolOf(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}
