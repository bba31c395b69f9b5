package router

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dynogrid/dynogrid/router/internal/http1"
)

// HTTP/2 to clients (over TLS, ALPN h2), with net/http's HTTP/2 server. Each stream is a
// request that takes the same path as an HTTP/1.1 one (Router.serve): it waits in the
// app's queue for an idle dyno, which gets it over HTTP/1.1.
//
// Floods are bounded by the server: at most Config.MaxStreams streams of a connection
// at once (a stream beyond is refused); streams a client resets still count until their
// request has ended, and a client that opens streams faster than their requests end
// (rapid reset, CVE-2023-44487) gets GOAWAY; a request's header block, CONTINUATION
// frames included, is bounded by -max-header-bytes, and a connection that exceeds it is
// closed (CONTINUATION flood). A stream reset by its client ends its request's context,
// which takes a queued request off the queue at once (H27).

// newH2Server makes the HTTP/2 server, which serves the connections whose handshake
// chose h2 (tlsListener hands them to its listener, an h2Listener).
func (r *Router) newH2Server() *http.Server {
	var protos http.Protocols
	protos.SetHTTP2(true)
	return &http.Server{
		Handler:        http.HandlerFunc(r.serveH2Stream),
		Protocols:      &protos,
		MaxHeaderBytes: r.cfg.MaxHeaderBytes,
		IdleTimeout:    r.cfg.IdleTimeout,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: r.cfg.MaxStreams,
			// A connection whose client takes no bytes for this long is closed.
			WriteByteTimeout: r.cfg.RequestTimeout,
		},
		// Connection errors (a flood refused, a protocol error) are the client's.
		ErrorLog: r.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
}

// serveH2Stream is where every HTTP/2 request enters the request path. Go's server lets
// spaces through in :method, :path and :authority, which the router writes to the dyno
// as its request line and Host header: a request whose method, target or authority
// the router's HTTP/1.1 parser would refuse in a request from a client is refused here
// the same way, before any dyno is taken, so that no dyno reads a request head other
// than the one the router meant.
func (r *Router) serveH2Stream(w http.ResponseWriter, req *http.Request) {
	if status, reason := http1.CheckRequest(req.Method, req.RequestURI, req.Host); status != 0 {
		r.log.Warn("refused an HTTP/2 request that cannot be forwarded as HTTP/1.1", "client", req.RemoteAddr,
			"status", status, "reason", reason, "method", truncate(req.Method, 256),
			"target", truncate(req.RequestURI, 256), "authority", truncate(req.Host, 256))
		text := strconv.Itoa(status) + " " + http.StatusText(status) + ": " + reason + "\n"
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(text)))
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
		return
	}
	r.serve(h2Response{w}, req)
}

// h2Response is an HTTP/2 stream's response as the request path takes it.
type h2Response struct{ http.ResponseWriter }

// SetWriteTimeout does nothing: a client that takes no bytes is bounded per connection
// (HTTP2Config.WriteByteTimeout).
func (h2Response) SetWriteTimeout(time.Duration) {}

// LendBody does nothing: a stream's body is its own.
func (h2Response) LendBody() {}

// Unwrap lets http.ResponseController reach the stream's own writer.
func (w h2Response) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// h2Listener is the listener of the HTTP/2 server: it returns the connections, their
// handshake done, that tlsListener hands it.
type h2Listener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newH2Listener(addr net.Addr) *h2Listener {
	return &h2Listener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// hand gives the server a connection, or closes it once the listener is closed.
func (l *h2Listener) hand(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *h2Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *h2Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *h2Listener) Addr() net.Addr { return l.addr }
