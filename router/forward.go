package router

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// HopHeader marks a request one router forwarded to another in cluster mode; a router
// never forwards such a request again.
const HopHeader = "X-Dyno-Router-Hop"

// PeerKeyHeader carries, on a request one router forwards to another, the forwarding
// router's peer key: a random secret it publishes only in its member key in Consul.
// The receiving router believes the request's forwarding headers only with it.
const PeerKeyHeader = "X-Dyno-Router-Key"

// NotOwnerHeader is set by a router on its answer to a forwarded request for an app of
// whose dynos it owns none: the forwarding router then serves the request itself.
const NotOwnerHeader = "X-Dyno-Router-Not-Owner"

// errNotOwner is a peer's answer that it does not own the app's dynos.
var errNotOwner = errors.New("the peer owns none of the app's dynos")

// peerFor returns the live router that owns app's queue, when it is another router
// than this one and its address is known.
func (c *cluster) peerFor(app string) (id, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o := c.ownerOf(app); o != c.id {
		return o, c.addrs[o]
	}
	return "", ""
}

// owns says whether this router owns app's queue by the current membership, even while
// it has none of its dynos yet.
func (c *cluster) owns(app string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ownerOf(app) == c.id
}

// expects says whether the app has passing dynos in Consul, whoever owns them: a router
// that has none of them may be about to take them over from a router that died.
func (c *cluster) expects(app string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.insts[app]) > 0
}

// fromPeer says whether req was forwarded by another live router: its hop header names
// a member. A client that sends the header itself is served as any client (the header
// never reaches dynos, so router IDs do not leak to apps).
func (c *cluster) fromPeer(req *http.Request) bool {
	id := req.Header.Get(HopHeader)
	if id == "" {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return id != c.id && slices.Contains(c.members, id)
}

// forwardedBy says whether req was forwarded by the live router that its hop header
// names: it carries that router's peer key. Its X-Forwarded-For and X-Forwarded-Proto
// and -Port are then the client's, as that router saw them. A client (or a dyno) that
// names a member is not believed on its headers, whatever fromPeer says: it cannot read
// the member keys in Consul.
func (c *cluster) forwardedBy(req *http.Request) bool {
	if !c.fromPeer(req) {
		return false
	}
	c.mu.Lock()
	want := c.keys[req.Header.Get(HopHeader)]
	c.mu.Unlock()
	got := req.Header.Get(PeerKeyHeader)
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// clusterRoute is what becomes of a request for an app with no dyno routed here.
type clusterRoute int

const (
	routeFail     clusterRoute = iota // answer the queue's error
	routeAnswered                     // answered: by the owner, or handed back to a peer
	routeHold                         // wait here: the app's dynos are on their way
)

// maxBounces bounds how often one request is sent on to a router that hands it back
// (it does not own the app by its own view of the members, which differs from this
// router's for the few milliseconds a membership change takes to reach both); the
// tries are bounceBackoff, then twice as long each time, apart: about 0.5 s in all.
const (
	maxBounces    = 8
	bounceBackoff = 2 * time.Millisecond
)

// routeInCluster sends a request for an app that has no dyno routed here to the router
// that owns the app's queue. A request forwarded here by a peer that took this router
// for the owner is handed back when it is not. A request waits here when this router
// owns the queue but has no dyno yet (they are being handed over), and when the owner
// refused the connection while Consul still has the app's dynos (it died or is
// leaving): the queue moves within seconds, and reconcile then sends the waiting
// requests to the new owner, or this router serves them. With routeHold comes the hold
// to wait with: taken before the last look at the owner, so that a move after that
// look sends the request here again.
func (r *Router) routeInCluster(w clientResponse, req *http.Request, a *app, body *bodySource, rec *record) (clusterRoute, hold) {
	c := r.cluster
	h := a.holdHere()
	if c.fromPeer(req) {
		if !c.owns(a.name) {
			r.handBack(w, rec)
			return routeAnswered, hold{}
		}
	} else {
		backoff := bounceBackoff
		for bounces := 0; ; bounces++ {
			h = a.holdHere()
			id, addr := c.peerFor(a.name)
			if addr == "" {
				break
			}
			answered, bounced := r.forward(w, req, a, body, rec, id, addr)
			if answered {
				return routeAnswered, hold{}
			}
			if bounces == maxBounces {
				break
			}
			if now, _ := c.peerFor(a.name); now != id {
				// The members changed while the request was on its way: reconcile has
				// redirected the app's queue already, so a request held here now would
				// wait for nothing. Try the new owner (or hold, when it is this router).
				continue
			}
			if !bounced {
				break
			}
			select {
			case <-time.After(backoff):
			case <-req.Context().Done():
				r.fail(w, rec, H27)
				return routeAnswered, hold{}
			}
			backoff *= 2
		}
	}
	if body.replayable() && c.expects(a.name) {
		return routeHold, h
	}
	return routeFail, hold{}
}

// handsBack answers, before its body is read, a request a peer forwarded for an app of
// whose dynos this router has none and whose queue it does not own (the peer's view of
// the members is behind). The peer asked for 100 Continue when the body is streamed, so
// it has sent none of it and can still send the request to the owner.
func (r *Router) handsBack(w clientResponse, req *http.Request, a *app, rec *record) bool {
	c := r.cluster
	if c == nil || !c.fromPeer(req) || a.hasUp() || c.owns(a.name) {
		return false
	}
	r.handBack(w, rec)
	return true
}

// handBack sends a peer's request back to it unserved: 503 naming this router in
// NotOwnerHeader. The peer serves, logs and counts the request; so this router does
// not, unless the request did not come from the peer it names (a client forged the hop
// header), which is logged and counted as any H10.
func (r *Router) handBack(w http.ResponseWriter, rec *record) {
	w.Header().Set(NotOwnerHeader, r.cluster.id)
	rec.desc = "Dynos owned by another router"
	rec.handedBack = rec.fromPeer
	r.fail(w, rec, H10)
}

// forward sends a request to the router id at addr, which owns the app's queue. It
// reports whether the request was answered: not when that router refused the
// connection or handed the request back (bounced: it does not own the app) and the
// body is replayable, so that the caller may still route the request.
func (r *Router) forward(w http.ResponseWriter, req *http.Request, a *app, body *bodySource, rec *record, id, addr string) (answered, bounced bool) {
	unsent := false // the peer got nothing, or handed the request back
	var gb *guardedBody
	switch {
	case body.mem != nil:
		// GetBody lets the peer transport send the request again on a new connection
		// when the kept-alive one turns out closed before any of it was written.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body.mem)), nil }
		req.Body, _ = req.GetBody()
		req.ContentLength = int64(len(body.mem))
	case body.streaming():
		gb = &guardedBody{r: io.MultiReader(bytes.NewReader(body.prefix), body.rest), src: body}
		req.Body = gb
		defer gb.shut(w)
	}
	rec.dyno = "router:" + id
	// The peer transport sends a request again on a new connection when a kept-alive
	// one fails: a refused second try does not mean the first sent nothing.
	var wrote atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteHeaders: func() { wrote.Store(true) },
	}))
	target := &url.URL{Scheme: "http", Host: addr}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = req.Host
			pr.Out.Header.Set(HopHeader, r.cluster.id)
			pr.Out.Header.Set(PeerKeyHeader, r.cluster.key)
			pr.Out.Header.Del("Expect") // answered here already (docs: Expect is dropped)
			if body.streaming() {
				// The owner answers before it reads any of the body, so that a hand-back
				// or a refusal leaves the body unsent and the request can go elsewhere.
				pr.Out.Header.Set("Expect", "100-continue")
			}
			pr.Out.Header.Set("X-Request-Id", rec.requestID)
			pr.Out.Header["X-Forwarded-For"] = req.Header["X-Forwarded-For"]
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Forwarded-Port", r.portFor(req))
		},
		Transport:     r.peerTransport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			notOwner := errors.Is(err, errNotOwner)
			if notOwner {
				r.log.Debug("the router thought to own the app's dynos handed a request back", "app", a.name, "peer", id)
			} else {
				r.log.Warn("failed to forward a request to the router owning the app's dynos", "app", a.name, "peer", id, "error", err)
			}
			if gb != nil {
				gb.shut(w) // no more of the body goes out: whether some did is known
			}
			if resendable(req, body, notOwner, wrote.Load(), err) {
				unsent, bounced = true, notOwner
				return
			}
			r.fail(w, rec, H10)
		},
		ModifyResponse: func(resp *http.Response) error {
			// Only the peer's own hand-back: a 503 naming it. A dyno's answers never
			// carry the header, except a 101, whose headers go out as the dyno sent
			// them (and whose request the dyno has already served).
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(NotOwnerHeader) == id {
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
		return false, bounced
	}
	if rec.code == nil {
		rec.bytes = cw.n
	}
	return true, false
}

// resendable says whether a request whose forward to a peer failed with err (notOwner:
// the peer handed it back; wrote: its head went out on some connection) may still be
// routed: the client is there, its body can be sent again, and the peer got none of
// it, or got it but served no dyno with it.
func resendable(req *http.Request, body *bodySource, notOwner, wrote bool, err error) bool {
	switch {
	case req.Context().Err() != nil || !body.replayable():
		return false
	case notOwner || (peerRefused(err) && !wrote):
		return true
	case body.streaming():
		// The owner read none of the body, so it routed nothing: it reads a body
		// before it queues the request.
		return peerLost(err)
	}
	return peerLost(err) && idempotent(req.Method)
}

// peerRefused says whether err is a refused connection to a peer router: it got nothing.
func peerRefused(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// peerLost says whether err is a peer router's connection ending before it answered (it
// died, or was killed), not a timeout: the request may have reached a dyno, so only an
// idempotent one may be routed again. Its dyno stays locked by the dead router's
// session until the request is over, so a second copy never overlaps it.
func peerLost(err error) bool {
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// idempotent methods may be sent again when a connection fails before the answer
// (RFC 9110, section 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
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
	src    *bodySource // marked lent on the first read
	closed bool
}

func (g *guardedBody) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, net.ErrClosed
	}
	g.src.lent.Store(true)
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
