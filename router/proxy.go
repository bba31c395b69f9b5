package router

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynogrid/dynogrid/router/internal/http1"
	"github.com/dynogrid/dynogrid/router/internal/sysconn"
)

// StaleHeader is set on every response while the router serves from a routing table it
// could not refresh from Consul.
const StaleHeader = "X-Dyno-Router-Stale"

// requestState is what the router keeps of one request while it routes it, in one
// allocation rather than one each.
type requestState struct {
	rec   record
	ob    outbound
	body  bodySource
	ahead sendAhead
}

// clientResponse is a client's response as the request path writes it: an HTTP/1.1
// connection's (*http1.Response, which can also park a queued request on its
// connection: parker) or an HTTP/2 stream's (h2Response).
type clientResponse interface {
	http.ResponseWriter
	SetWriteTimeout(time.Duration) // each write of the response must be done in this long
	LendBody()                     // another goroutine reads the request body from now on
}

// ServeHTTP1 routes one HTTP/1.1 request (over TCP or TLS).
func (r *Router) ServeHTTP1(w *http1.Response, req *http.Request) { r.serve(w, req) }

// serve routes one client request: find the app by Host, take an idle dyno (waiting in
// the app's queue for one), forward the request and stream the response back.
func (r *Router) serve(w clientResponse, req *http.Request) {
	start := time.Now()
	ip := clientIP(req)
	st := new(requestState)
	rec := &st.rec
	rec.method, rec.path, rec.host = req.Method, req.RequestURI, req.Host
	rec.fwd = forwardedFor(req, ip)
	peer := r.cluster != nil && r.cluster.forwardedBy(req)
	rec.fromPeer = peer
	if v := strings.Join(req.Header.Values("X-Forwarded-For"), ", "); peer && v != "" {
		rec.fwd = v // the peer put the client's address in it
	}
	rec.requestID = req.Header.Get("X-Request-Id")
	if !saneRequestID(rec.requestID) {
		rec.requestID = r.cfg.NewID()
	}
	defer r.finish(rec)
	if r.stale.Load() {
		w.Header().Set(StaleHeader, "true")
	}

	if r.isACMEChallenge(req) {
		r.serveACMEChallenge(w, req, rec)
		return
	}
	host := canonicalHost(req.Host)
	a := r.table.Load().lookup(host)
	if a == nil {
		if rec.appName = r.appWithoutDynos(host); rec.appName != "" {
			r.fail(w, rec, H14)
			return
		}
		r.fail(w, rec, codeNoApp)
		return
	}
	rec.app = a
	set := a.settings.load()
	if set.maintenance {
		r.fail(w, rec, H80)
		return
	}
	timeout := set.timeout
	if timeout <= 0 {
		timeout = r.cfg.RequestTimeout
	}
	w.SetWriteTimeout(timeout)
	ob := &st.ob
	*ob = outbound{req: req, requestID: rec.requestID, fwdFor: rec.fwd, proto: "http",
		port: r.portFor(req), start: start}
	if req.TLS != nil {
		ob.proto = "https"
	}
	if peer {
		// The dyno sees the request as the router the client reached saw it.
		if p := req.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			ob.proto = p
		}
		if p := req.Header.Get("X-Forwarded-Port"); validPort(p) {
			ob.port = p
		}
	}
	if ob.proto == "http" && r.redirectsToHTTPS(a.name) {
		r.redirectToHTTPS(w, req, rec)
		return
	}
	if up, ok := isUpgrade(req); ok {
		ob.upgrade = up
	}
	if r.handsBack(w, req, a, rec) {
		return
	}
	body, code := r.prepareBody(w, req, ob, &st.body)
	if code != nil {
		r.fail(w, rec, code)
		return
	}
	if body.streaming() {
		w.LendBody() // to the goroutine that streams it
	}

	var ahead *sendAhead
	var park parker
	if !body.streaming() {
		park, _ = w.(parker)
		wb := wireBufs.Get().(*bytes.Buffer)
		defer func() { wb.Reset(); wireBufs.Put(wb) }()
		ob.writeHead(wb)
		wb.Write(body.mem)
		ahead = &st.ahead
		ahead.wire, ahead.method, ahead.timeout = wb.Bytes(), req.Method, timeout
	} else if c, ok := w.(interface{ ClientGone() bool }); ok {
		park = unwatchedParker{gone: c.ClientGone}
	}

	front, held := false, hold{}
	for attempt := 1; ; attempt++ {
		if ahead != nil {
			ahead.dc, ahead.err = nil, nil
		}
		maxWait := r.cfg.MaxQueueWait - rec.wait
		if held.on {
			maxWait = min(maxWait, takeoverWait)
		}
		t0 := time.Now()
		l, depth, qe := a.acquire(req.Context(), front, held, maxWait, ahead, park)
		rec.wait += time.Since(t0)
		if attempt == 1 {
			rec.queue = depth
		}
		if qe != nil {
			if qe.code == H10 && (attempt == 1 || qe.moved) && r.cluster != nil {
				route, h := r.routeInCluster(w, req, a, body, rec)
				switch route {
				case routeAnswered:
					return
				case routeHold:
					held = h
					continue
				}
			}
			r.fail(w, rec, qe.code)
			return
		}
		r.metrics.dispatched(a, time.Since(start), rec.wait)
		d := l.d
		rec.dyno = d.name
		var dc *dynoConn
		var err error
		if ahead != nil && ahead.dc != nil {
			dc = ahead.dc // the request went out with the hand-off
		} else {
			var connect time.Duration
			dc, connect, err = d.take(req.Context(), r.dialer.DialContext, timeout)
			rec.connect += connect
		}
		if err != nil {
			if req.Context().Err() != nil {
				l.settle(ended)
				r.fail(w, rec, H27)
				return
			}
			r.log.Warn("dyno refused a connection; trying another", "app", a.name, "dyno", d.name, "addr", d.addr, "error", err)
			l.settle(down)
			if attempt >= r.cfg.MaxAttempts {
				r.fail(w, rec, H10)
				return
			}
			front = true
			continue
		}
		if r.exchange(w, req, l, dc, ob, body, ahead, timeout, rec) {
			if attempt >= r.cfg.MaxAttempts {
				r.fail(w, rec, H10)
				return
			}
			front = true
			continue
		}
		return
	}
}

// exchange sends one request over dc to the dyno of lease l (unless the hand-off sent
// it already: ahead.dc) and relays the response. It settles l (as down when it returns
// true: the dyno refused the request before getting any byte of it, and the request may
// go to another dyno).
func (r *Router) exchange(w http.ResponseWriter, req *http.Request, l lease, dc *dynoConn,
	ob *outbound, body *bodySource, ahead *sendAhead, timeout time.Duration, rec *record) (retry bool) {
	defer func() {
		if v := recover(); v != nil {
			l.abandon(dc)
			panic(v)
		}
	}()
	var sent time.Time
	var err error
	switch {
	case ahead != nil && ahead.dc != nil:
		sent, err = ahead.at, ahead.err
	case ahead != nil:
		sent = time.Now()
		err = dc.send(ahead.wire)
	default:
		sent = time.Now()
		ob.writeHead(dc.bw)
		err = dc.bw.Flush()
	}
	defer func() { rec.service = time.Since(sent) }()
	if err != nil {
		dc.close()
		if dc.written == 0 && refusedBeforeSend(err) {
			r.log.Warn("dyno reset a connection before the request; trying another", "app", l.d.app.name, "dyno", l.d.name, "error", err)
			l.settle(down)
			return true
		}
		l.settle(ended)
		r.fail(w, rec, H13)
		return false
	}
	var bw *bodyWriter
	if body.streaming() {
		bw = r.startBodyWriter(w, dc, body, ob.length)
	}

	resp, err := http1.ReadResponse(dc.br, req.Method)
	if bw != nil {
		if done, werr := bw.finished(); done && werr != nil {
			var ce *clientBodyError
			if errors.As(werr, &ce) {
				// The client's body failed: answer the client, and free the dyno once
				// it has answered the truncated request (or closed).
				r.fail(w, rec, clientBodyCode(ce.err))
				if err != nil {
					dc.close()
					l.settle(ended)
				} else {
					l.drain(dc, resp, req.Method, timeout)
				}
				return false
			}
		}
	}
	if err != nil {
		r.failedResponse(w, req, l, dc, bw, err, timeout, rec)
		return false
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		r.upgrade(w, l, dc, bw, ob, resp, rec)
		return false
	}
	r.relay(w, req, l, dc, bw, resp, timeout, rec)
	return false
}

// failedResponse answers a request whose response head never came: H12 on timeout (the
// dyno stays busy until it finishes, or, after part of a head, until it closes the
// connection or goes silent for timeout), H13 when the dyno closed the connection, H17
// for a malformed head. It settles l.
func (r *Router) failedResponse(w http.ResponseWriter, req *http.Request, l lease, dc *dynoConn,
	bw *bodyWriter, err error, timeout time.Duration, rec *record) {
	var re *http1.ResponseError
	errors.As(err, &re)
	if http1.IsTimeout(err) {
		if bw != nil && bw.waitsForClient() {
			// The dyno waits for the rest of the body, which the client is slow to
			// send: the client's timeout, not the app's.
			r.fail(w, rec, codeClientTimeout)
		} else {
			r.fail(w, rec, H12)
		}
		if re == nil || !re.Nothing {
			// Part of a head arrived: where the response ends cannot be found, and the
			// dyno may still be at work on the request.
			if bw != nil {
				bw.stop(w, dc)
			}
			l.drainUnframed(dc, timeout)
			return
		}
		if bw != nil {
			if done, werr := bw.finished(); !done || werr != nil {
				// The dyno still waits for the body: end it, then wait for the dyno.
				bw.stop(w, dc)
				closeWrite(dc.c)
			}
		}
		l.drain(dc, nil, req.Method, 0)
		return
	}
	if bw != nil {
		bw.stop(w, dc)
	}
	dc.close()
	l.settle(ended)
	if re != nil && !re.Nothing && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
		r.fail(w, rec, H17)
		return
	}
	r.fail(w, rec, H13)
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// takeoverWait bounds how long a request waits for the dynos of a router that died to
// be taken over (about 7 s in cluster mode, see docs/router.md) before it is answered H10.
const takeoverWait = 10 * time.Second

// wireBufs hold requests as they go to dynos.
var wireBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// relay streams a response to the client. It settles l: succeeded when the body ended
// (keeping the connection when it can be reused), ended when it failed (closing it),
// draining when the client left.
func (r *Router) relay(w http.ResponseWriter, req *http.Request, l lease, dc *dynoConn, bw *bodyWriter,
	resp *http.Response, timeout time.Duration, rec *record) {
	takeResponseHeader(w, resp.Header)
	h := w.Header()
	rec.status = resp.StatusCode
	w.WriteHeader(resp.StatusCode)

	flush := resp.ContentLength < 0
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	bp := copyBufs.Get().(*[]byte)
	buf := *bp
	var rerr, werr error
	deadline := dc.deadline
	every := sysconn.RenewSlack(timeout)
	for {
		// The dyno must send something every timeout (a tenth more at most): the deadline
		// is set again, that much further than needed, only once less than timeout is
		// left, not on every read (a timer update each).
		if now := time.Now(); deadline.Sub(now) < timeout {
			deadline = now.Add(timeout + every)
			_ = dc.c.SetReadDeadline(deadline)
		}
		n, err := resp.Body.Read(buf)
		if n > 0 {
			m, err := w.Write(buf[:n])
			rec.bytes += int64(m)
			if err != nil {
				werr = err
				break
			}
			if flush {
				if err := rc.Flush(); err != nil {
					werr = err
					break
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	copyBufs.Put(bp)

	switch {
	case werr != nil:
		// The client left mid-response: the dyno is busy until its response is over.
		if bw != nil && !bw.wait(w, dc, 0) {
			dc.clean = false
		}
		rec.code = H27
		l.drain(dc, resp, req.Method, timeout)
		return
	case rerr != nil:
		if bw != nil {
			bw.stop(w, dc)
		}
		if http1.IsTimeout(rerr) {
			// The dyno went silent mid-response: it may still be at work on it.
			l.drainUnframed(dc, timeout)
		} else {
			dc.close()
			l.settle(ended)
		}
		rec.code = H18
		// Abort the client's response so it sees the truncation (the request's line
		// is logged on the way out, once exchange has noted the service time).
		panic(http.ErrAbortHandler)
	}
	for k, vs := range resp.Trailer {
		if !forbiddenTrailers[k] {
			h[http.TrailerPrefix+k] = vs
		}
	}
	reuse := !resp.Close
	if bw != nil && !bw.wait(w, dc, 100*time.Millisecond) {
		// The dyno answered before reading the whole body: that connection is spent.
		reuse = false
	}
	if reuse {
		l.d.keep(dc)
	} else {
		dc.close()
	}
	l.settle(succeeded)
}

// fail answers a request with a coded error page (unless the client is gone) and notes
// the code for the log line.
func (r *Router) fail(w http.ResponseWriter, rec *record, c *Code) {
	rec.code = c
	rec.status = c.Status
	if c == H27 {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-store")
	if c.Status == http.StatusRequestEntityTooLarge || c.Status == http.StatusRequestTimeout {
		h.Set("Connection", "close")
	}
	body := c.body()
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(c.Status)
	n, _ := io.WriteString(w, body)
	rec.bytes = int64(n)
}
