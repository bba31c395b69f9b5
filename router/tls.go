package router

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/dynogrid/dynogrid/router/internal/sysconn"
)

// The HTTPS listener: TLS 1.2 and up, a certificate chosen by server name (certs.go),
// and ALPN picking the protocol. An "http/1.1" connection (or one without ALPN) goes to
// the router's own HTTP/1.1 server as a plain connection does; an "h2" one to HTTP/2
// (h2.go). Either way each request takes the same path (Router.serve).

// cipherSuites are the TLS 1.2 suites offered: forward secrecy and AEAD only. TLS 1.3's
// suites are all of that kind, and Go does not let them be configured.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

func (r *Router) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   cipherSuites,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: r.certFor,
	}
}

// tlsListener accepts TCP connections, makes the TLS handshake of each in a goroutine of
// its own (a slow client holds up no other), hands HTTP/2 connections to h2 and returns
// the others from Accept, for the HTTP/1.1 server.
type tlsListener struct {
	net.Listener // the TCP listener
	cfg          *tls.Config
	timeout      time.Duration // for the handshake
	h2           func(net.Conn)
	onError      func(net.Conn, error)

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	acceptErr error // set, if at all, by the closeOnce that closes done
}

func newTLSListener(ln net.Listener, cfg *tls.Config, timeout time.Duration, h2 func(net.Conn), onError func(net.Conn, error)) *tlsListener {
	l := &tlsListener{Listener: ln, cfg: cfg, timeout: timeout, h2: h2, onError: onError,
		conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			// Set only by the close that wins: after a Close, Accept may be reading it.
			l.closeOnce.Do(func() { l.acceptErr = err; close(l.done) })
			return
		}
		backoff = 0
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(c net.Conn) {
	tc := tls.Server(sysconn.Wrap(c), l.cfg)
	_ = c.SetDeadline(time.Now().Add(l.timeout))
	if err := tc.HandshakeContext(context.Background()); err != nil {
		l.onError(c, err)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		l.h2(tc)
		return
	}
	select {
	case l.conns <- tc:
	case <-l.done:
		tc.Close()
	}
}

// Accept returns the next HTTP/1.1 connection, its handshake done.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		if l.acceptErr != nil {
			return nil, l.acceptErr
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections whose handshake is under way are closed at its end.
func (l *tlsListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// isHandshakeNoise says whether a failed handshake is only a client going away or
// timing out, not worth more than a debug line.
func isHandshakeNoise(err error) bool {
	var ne net.Error
	return errors.Is(err, net.ErrClosed) || errors.As(err, &ne) && ne.Timeout() || errors.Is(err, http.ErrServerClosed)
}

// handshakeFailed logs a failed TLS handshake: a client that offered only old versions
// or ciphers, named a server with no certificate, or went away.
func (r *Router) handshakeFailed(c net.Conn, err error) {
	r.metrics.tlsHandshakeFailed()
	if isHandshakeNoise(err) {
		r.log.Trace("TLS handshake failed", "client", c.RemoteAddr().String(), "error", err)
		return
	}
	r.log.Debug("TLS handshake failed", "client", c.RemoteAddr().String(), "error", err)
}
