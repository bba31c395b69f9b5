package router

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/dynogrid/dynogrid/router/internal/evloop"
	"github.com/dynogrid/dynogrid/router/internal/http1"
)

// loopRequest is one request the event loop routes: from its head to the end of its
// response (or its failure), through the app's queue, a dyno connection (loopDyno) and
// back to the client.
type loopRequest struct {
	c       *loopClient
	s       *loopServer
	st      requestState
	req     *http.Request
	a       *app
	wire    *bytes.Buffer // the request as it goes to the dyno
	timeout time.Duration
	start   time.Time
	attempt int

	w waiter // in the app's queue
	// queued: the request waits in the queue, as the loop knows it (w.queued is the
	// queue's, under the app's mutex).
	queued   bool
	queuedAt time.Time
	timer    *evloop.Timer // the queue wait
	// leaving is why the wait ended (H11, H27) while a dyno was on its way to the
	// request: the hand-off decides.
	leaving *Code

	l     lease
	dc    *loopDyno
	sent  time.Time     // when the request went to its dyno
	frame http1.Framing // the response to the client, once its head is out
	over  bool
}

func newLoopRequest(c *loopClient, p *pendingRequest, body []byte) *loopRequest {
	req, a := p.req, p.app
	rq := &loopRequest{c: c, s: c.s, req: req, a: a, start: p.start}
	rq.w.loop = rq
	r := c.s.r
	rec := &rq.st.rec
	ip := clientIP(req)
	rec.method, rec.path, rec.host = req.Method, req.RequestURI, req.Host
	rec.fwd = forwardedFor(req, ip)
	rec.requestID = req.Header.Get("X-Request-Id")
	if !saneRequestID(rec.requestID) {
		rec.requestID = r.cfg.NewID()
	}
	rec.app = a
	rq.timeout = a.settings.load().timeout
	if rq.timeout <= 0 {
		rq.timeout = r.cfg.RequestTimeout
	}
	ob := &rq.st.ob
	*ob = outbound{req: req, requestID: rec.requestID, fwdFor: rec.fwd, proto: "http",
		port: r.portFor(req), start: rq.start, length: int64(len(body))}
	rq.wire = wireBufs.Get().(*bytes.Buffer)
	ob.writeHead(rq.wire)
	rq.wire.Write(body)
	return rq
}

// servable says whether the loop serves req itself, and for which app: a plain
// HTTP/1.1 request with no body or a small one read whole, for an app with dynos here.
// Everything else (streamed and chunked bodies, Expect, upgrades, HTTP/1.0, ACME, apps
// unknown, in maintenance or redirected to HTTPS) is the goroutine
// server's, which answers it as it answers any request. (The loop never runs in
// cluster mode: see Config.EventLoop.)
func (s *loopServer) servable(req *http.Request, expect bool) (*app, bool) {
	r := s.r
	if expect || !req.ProtoAtLeast(1, 1) || req.TransferEncoding != nil {
		return nil, false
	}
	if req.ContentLength < 0 || req.ContentLength >= int64(r.cfg.BodyPrefetch) ||
		r.cfg.MaxBodyBytes >= 0 && req.ContentLength > r.cfg.MaxBodyBytes {
		return nil, false
	}
	if _, up := isUpgrade(req); up || r.isACMEChallenge(req) {
		return nil, false
	}
	a := r.table.Load().lookup(canonicalHost(req.Host))
	if a == nil || a.settings.load().maintenance || r.redirectsToHTTPS(a.name) {
		return nil, false
	}
	return a, true
}

// route takes a dyno for the request, or queues it.
func (rq *loopRequest) route() {
	rq.attempt++
	maxWait := rq.s.r.cfg.MaxQueueWait - rq.st.rec.wait
	l, depth, qe, queued := rq.a.acquireLoop(&rq.w, rq.attempt > 1)
	if rq.attempt == 1 {
		rq.st.rec.queue = depth
	}
	switch {
	case qe != nil:
		rq.fail(qe.code)
	case queued:
		rq.queued = true
		rq.queuedAt = time.Now()
		if rq.timer == nil {
			rq.timer = rq.s.ev.After(maxWait, rq.waitRanOut)
		} else {
			rq.timer.Reset(maxWait)
		}
		if rq.c.hup {
			rq.waitEnded(H27)
		}
	default:
		rq.dispatch(l)
	}
}

func (rq *loopRequest) waitRanOut() { rq.waitEnded(H11) }

// wake is the queue handing the request a dyno (waiter.wake), from any goroutine.
func (rq *loopRequest) wake() { rq.s.ev.Post(rq.handed) }

// handed takes the dyno the queue handed over, on the loop.
func (rq *loopRequest) handed() {
	l := rq.w.handedOver()
	rq.queued = false
	if rq.over {
		// Ended meanwhile (the router's shutdown closed its client).
		if l.d != nil {
			l.settle(ended)
		}
		return
	}
	rq.timer.Stop()
	rq.st.rec.wait += time.Since(rq.queuedAt)
	code := rq.leaving
	rq.leaving = nil
	switch {
	case l.d == nil:
		rq.fail(H10) // the queue moved
	case code == H27:
		l.settle(ended)
		rq.fail(H27)
	default:
		// The wait ran out as the dyno came (H11): the client is still there.
		rq.dispatch(l)
	}
}

// waitEnded ends the wait of a queued request: its client left (H27) or it waited too
// long (H11).
func (rq *loopRequest) waitEnded(code *Code) {
	a := rq.a
	if h := a.r.hooks.waitEnding; h != nil {
		// Tests hold the request here, queued, while the loop goes on.
		rq.leaving = code
		go func() {
			h(a.name, code)
			rq.s.ev.Post(func() { rq.leaveQueue(code) })
		}()
		return
	}
	rq.leaveQueue(code)
}

func (rq *loopRequest) leaveQueue(code *Code) {
	a := rq.a
	a.mu.Lock()
	if !rq.w.queued {
		a.mu.Unlock()
		rq.leaving = code // a dyno is on its way (handed)
		return
	}
	a.unlink(&rq.w)
	if code == H11 && a.up == 0 {
		code = H10
	}
	a.mu.Unlock()
	rq.queued, rq.leaving = false, nil
	if rq.over {
		return // ended meanwhile (the router's shutdown closed its client)
	}
	rq.timer.Stop()
	rq.st.rec.wait += time.Since(rq.queuedAt)
	rq.fail(code)
}

// clientMoved is the client connection's news while the request is in progress: a
// queued request whose client left ends (H27); output it can take again lets the
// response go on.
func (rq *loopRequest) clientMoved() {
	if rq.queued && rq.c.hup && rq.leaving == nil {
		rq.waitEnded(H27)
		return
	}
	if rq.dc != nil && !rq.dc.heldBack() {
		rq.dc.step()
	}
}

// dispatch sends the request to the dyno of l, on its kept-alive connection or a new
// one.
func (rq *loopRequest) dispatch(l lease) {
	r := rq.s.r
	r.metrics.dispatched(rq.a, time.Since(rq.start), rq.st.rec.wait)
	rq.l = l
	rq.st.rec.dyno = l.d.name
	if dc := rq.s.takeIdle(l.d); dc != nil {
		rq.send(dc)
		return
	}
	rq.s.dial(rq)
}

// dialed goes on once the connection to the dyno is made (or not).
func (rq *loopRequest) dialed(dc *loopDyno, connect time.Duration, err error) {
	rq.st.rec.connect += connect
	if err != nil {
		d := rq.l.d
		rq.s.r.log.Warn("dyno refused a connection; trying another", "app", rq.a.name, "dyno", d.name, "addr", d.addr, "error", err)
		rq.retry()
		return
	}
	rq.send(dc)
}

// retry gives the dyno back as down and routes the request again, at the front of
// the queue, unless it has been tried enough (H10).
func (rq *loopRequest) retry() {
	l := rq.l
	rq.l, rq.dc, rq.sent = lease{}, nil, time.Time{}
	l.settle(down)
	if rq.attempt >= rq.s.r.cfg.MaxAttempts {
		rq.fail(H10)
		return
	}
	rq.route()
}

func (rq *loopRequest) send(dc *loopDyno) {
	rq.dc = dc
	dc.begin(rq, rq.l, rq.req.Method, rq.timeout, rq.wire.Bytes())
}

// refused: the dyno reset the connection before it got any byte of the request.
func (rq *loopRequest) refused(err error) {
	rq.s.r.log.Warn("dyno reset a connection before the request; trying another", "app", rq.a.name, "dyno", rq.l.d.name, "error", err)
	rq.retry()
}

// responseHead sends the client the head of the dyno's response.
func (rq *loopRequest) responseHead(resp *http.Response) {
	h := resp.Header
	conn := connectionTokens(h)
	for k := range h {
		if hopByHop(k, conn) {
			delete(h, k)
		}
	}
	if rq.s.r.stale.Load() {
		h.Set(StaleHeader, "true")
	}
	rq.st.rec.status = resp.StatusCode
	rq.head(resp.StatusCode, h)
}

func (rq *loopRequest) head(code int, h http.Header) {
	c := rq.c
	c.out, rq.frame = http1.AppendResponseHead(c.out, code, h, http1.HeadOptions{Method: rq.req.Method, HTTP11: true,
		Close: rq.req.Close || rq.s.shutting})
}

// body sends the client a piece of the response body.
func (rq *loopRequest) body(p []byte) {
	f := &rq.frame
	if f.NoBody || len(p) == 0 {
		return
	}
	c := rq.c
	rq.st.rec.bytes += int64(len(p))
	if !f.Chunked {
		c.send(p)
		return
	}
	var size [20]byte
	c.out = append(c.out, strconv.AppendInt(size[:0], int64(len(p)), 16)...)
	c.out = append(c.out, "\r\n"...)
	c.out = append(c.out, p...)
	c.send(crlf)
}

var crlf = []byte("\r\n")

// responseEnded finishes the client's response (the last chunk and the trailer) and
// the request.
func (rq *loopRequest) responseEnded(trailer http.Header) {
	if rq.frame.Chunked {
		for k := range trailer {
			if forbiddenTrailers[k] {
				delete(trailer, k)
			}
		}
		rq.c.out = http1.AppendLastChunk(rq.c.out, trailer)
	}
	if c := rq.c; c.hup {
		c.flushPending()
		if c.broken || c.reset() {
			// The client closed its connection during the response, and the
			// response did not reach it (its reset came back for what was sent).
			rq.st.rec.code = H27
		}
	}
	rq.end(rq.frame.Close)
}

// aborted ends a response cut short (H18): the client's connection closes, so that it
// sees the truncation.
func (rq *loopRequest) aborted() {
	rq.st.rec.code = H18
	rq.end(true)
}

// failed answers a request whose dyno failed it before its response began (H12, H13,
// H17).
func (rq *loopRequest) failed(code *Code) {
	rq.dc = nil
	rq.fail(code)
}

// clientBroke: a write to the client failed (or timed out), or the connection closed.
// The dyno's response, if it is on its way, is drained.
func (rq *loopRequest) clientBroke() {
	if rq.over {
		return
	}
	if rq.queued && rq.leaving == nil {
		rq.waitEnded(H27)
		return
	}
	if dc := rq.dc; dc != nil {
		rq.dc = nil
		dc.detach()
	}
	if rec := &rq.st.rec; rec.code == nil {
		rec.code = H27
		if rec.status == 0 {
			rec.status = H27.Status // no head went out
		}
	}
	rq.end(true)
}

// fail answers the request with a coded error page (none for H27: the client left).
func (rq *loopRequest) fail(code *Code) {
	rec := &rq.st.rec
	rec.code, rec.status = code, code.Status
	if code == H27 || rq.c.broken {
		rq.end(true)
		return
	}
	h := make(http.Header, 4)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-store")
	closeConn := code.Status == http.StatusRequestEntityTooLarge || code.Status == http.StatusRequestTimeout
	if closeConn {
		h.Set("Connection", "close")
	}
	if rq.s.r.stale.Load() {
		h.Set(StaleHeader, "true")
	}
	body := code.body()
	h.Set("Content-Length", strconv.Itoa(len(body)))
	rq.head(code.Status, h)
	rq.body([]byte(body))
	rec.bytes = int64(len(body)) // the page's length, also for HEAD, as the goroutine server logs it
	rq.end(closeConn || rq.frame.Close)
}

// end logs the request and hands the connection back for the next one.
func (rq *loopRequest) end(closeConn bool) {
	if rq.over {
		return
	}
	rq.over = true
	if !rq.sent.IsZero() {
		rq.st.rec.service = time.Since(rq.sent)
	}
	if rq.timer != nil {
		rq.timer.Stop()
	}
	rq.wire.Reset()
	wireBufs.Put(rq.wire)
	rq.wire = nil
	rq.s.r.finish(&rq.st.rec)
	rq.c.requestEnded(closeConn)
}
