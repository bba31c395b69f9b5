package router

import (
	"context"
	"crypto/tls"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/http2"
)

// HTTP/2 to clients (over TLS, ALPN h2), with golang.org/x/net/http2's server. Each
// stream is a request that takes the same path as an HTTP/1.1 one (Router.serve): it
// waits in the app's queue for an idle dyno, which gets it over HTTP/1.1.
//
// Floods are bounded by the server: at most Config.MaxStreams streams of a connection
// at once (a stream beyond is refused); streams a client resets still count until their
// request has ended, and a client that opens streams faster than their requests end
// (rapid reset, CVE-2023-44487) gets GOAWAY; a request's header block, CONTINUATION
// frames included, is bounded by -max-header-bytes, and a connection that exceeds it is
// closed (CONTINUATION flood). A stream reset by its client ends its request's context,
// which takes a queued request off the queue at once (H27).

// newH2Server makes the HTTP/2 server; base carries its limits and lets a shutdown tell
// every connection to go away (http2.ConfigureServer).
func (r *Router) newH2Server() (*http2.Server, *http.Server, error) {
	base := &http.Server{MaxHeaderBytes: r.cfg.MaxHeaderBytes, IdleTimeout: r.cfg.IdleTimeout,
		// Connection errors (a flood refused, a protocol error) are the client's.
		ErrorLog: r.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})}
	h2 := &http2.Server{
		MaxConcurrentStreams: uint32(r.cfg.MaxStreams),
		IdleTimeout:          r.cfg.IdleTimeout,
		// A connection whose client takes no bytes for this long is closed.
		WriteByteTimeout: r.cfg.RequestTimeout,
	}
	if err := http2.ConfigureServer(base, h2); err != nil {
		return nil, nil, err
	}
	return h2, base, nil
}

// serveH2 serves one HTTP/2 connection until it ends.
func (r *Router) serveH2(tc *tls.Conn) {
	if !r.h2conns.add(tc) {
		tc.Close()
		return
	}
	defer r.h2conns.remove(tc)
	r.h2srv.ServeConn(tc, &http2.ServeConnOpts{
		Context:    context.Background(),
		BaseConfig: r.h2base,
		Handler:    http.HandlerFunc(r.serveH2Stream),
	})
}

func (r *Router) serveH2Stream(w http.ResponseWriter, req *http.Request) {
	r.serve(h2Response{w}, req)
}

// h2Response is an HTTP/2 stream's response as the request path takes it.
type h2Response struct{ http.ResponseWriter }

// SetWriteTimeout does nothing: a client that takes no bytes is bounded per connection
// (http2.Server.WriteByteTimeout).
func (h2Response) SetWriteTimeout(time.Duration) {}

// LendBody does nothing: a stream's body is its own.
func (h2Response) LendBody() {}

// Unwrap lets http.ResponseController reach the stream's own writer.
func (w h2Response) Unwrap() http.ResponseWriter { return w.ResponseWriter }
