package router

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// HopHeader marks a request one router forwarded to another in cluster mode; a router
// never forwards such a request again.
const HopHeader = "X-Dyno-Router-Hop"

// NotOwnerHeader is set by a router on its answer to a forwarded request for an app of
// whose dynos it owns none: the forwarding router then serves the request itself.
const NotOwnerHeader = "X-Dyno-Router-Not-Owner"

// errNotOwner is a peer's answer that it does not own the app's dynos.
var errNotOwner = errors.New("the peer owns none of the app's dynos")

// peerFor returns the address of a live router that owns dynos of app (the one owning
// most), or "" when none does.
func (c *cluster) peerFor(app string) (id, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	count := map[string]int{}
	for _, in := range c.insts[app] {
		if o := owner(c.members, in.ID); o != "" && o != c.id {
			count[o]++
		}
	}
	best := 0
	for o, n := range count {
		if a := c.addrs[o]; a != "" && (n > best || (n == best && o < id)) {
			id, addr, best = o, a, n
		}
	}
	return id, addr
}

// ownsAny says whether this router owns (by the current membership) any passing dyno of
// app, even one not in its table yet.
func (c *cluster) ownsAny(app string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, in := range c.insts[app] {
		if owner(c.members, in.ID) == c.id {
			return true
		}
	}
	return false
}

// expects says whether the app has passing dynos in Consul, whoever owns them: a router
// that has none of them may be about to take them over from a router that died.
func (c *cluster) expects(app string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.insts[app]) > 0
}

// forward sends a request for an app this router owns no dyno of to the router that
// owns its dynos, so that an app with fewer dynos than routers is served through every
// router. It reports whether the request was answered: not when no live router owns
// the app's dynos, nor when the owning router refused the connection or said it owns
// none of them (the body is replayable then, so the caller may still serve the request).
func (r *Router) forward(w http.ResponseWriter, req *http.Request, a *app, body *bodySource, rec *record) (answered bool) {
	if r.cluster == nil || req.Header.Get(HopHeader) != "" {
		return false
	}
	id, addr := r.cluster.peerFor(a.name)
	if addr == "" {
		return false
	}
	unsent := false // the peer got nothing, or handed the request back
	switch {
	case body.mem != nil:
		req.Body = io.NopCloser(bytes.NewReader(body.mem))
		req.ContentLength = int64(len(body.mem))
	case body.streaming():
		gb := &guardedBody{r: io.MultiReader(bytes.NewReader(body.prefix), body.rest)}
		req.Body = gb
		defer gb.shut(w)
	}
	rec.dyno = "router:" + id
	target := &url.URL{Scheme: "http", Host: addr}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = req.Host
			pr.Out.Header.Set(HopHeader, r.cluster.id)
			pr.Out.Header.Del("Expect") // answered here already (docs: Expect is dropped)
			pr.Out.Header.Set("X-Request-Id", rec.requestID)
			pr.Out.Header["X-Forwarded-For"] = req.Header["X-Forwarded-For"]
			pr.SetXForwarded()
		},
		Transport:     r.peerTransport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			var oe *net.OpError
			notOwner := errors.Is(err, errNotOwner)
			if notOwner {
				r.log.Debug("the router thought to own the app's dynos handed a request back", "app", a.name, "peer", id)
			} else {
				r.log.Warn("failed to forward a request to the router owning the app's dynos", "app", a.name, "peer", id, "error", err)
			}
			if (notOwner || errors.As(err, &oe) && oe.Op == "dial") && !body.streaming() {
				unsent = true
				return
			}
			r.fail(w, rec, H10)
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Header.Get(NotOwnerHeader) != "" {
				return errNotOwner
			}
			rec.status = resp.StatusCode
			return nil
		},
	}
	cw := &countingWriter{ResponseWriter: w}
	rp.ServeHTTP(cw, req)
	if unsent {
		rec.dyno = ""
		return false
	}
	if rec.code == nil {
		rec.bytes = cw.n
	}
	return true
}

// countingWriter counts body bytes written to the client.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.ResponseWriter.Write(p)
	cw.n += int64(n)
	return n, err
}

func (cw *countingWriter) Unwrap() http.ResponseWriter { return cw.ResponseWriter }

// guardedBody lends the client's body to the peer Transport, whose write loop may still
// be reading it when ServeHTTP returns (the peer answered early). shut ends that before
// the client connection is read again or its reader goes back to the pool.
type guardedBody struct {
	mu     sync.Mutex
	r      io.Reader
	closed bool
}

func (g *guardedBody) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, net.ErrClosed
	}
	return g.r.Read(p)
}

func (g *guardedBody) Close() error { return nil }

// shut stops the body: a read in progress is cut short by a past read deadline (the
// connection then closes: its body is in an unknown state).
func (g *guardedBody) shut(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now())
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	_ = rc.SetReadDeadline(time.Time{})
}
