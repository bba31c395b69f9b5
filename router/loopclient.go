package router

import (
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/dynogrid/router/internal/evloop"
	"github.com/dynogrid/dynogrid/router/internal/http1"
	"github.com/dynogrid/dynogrid/router/internal/sysconn"
)

// loopClient is one client connection served by the event loop: requests are read from
// in, answers go out through out, one request at a time (pipelined ones wait in in).
type loopClient struct {
	s      *loopServer
	fd     int
	base   *http.Request // what each request starts as: the client's address
	resume func()        // c.run, made once

	in   []byte // in[ioff:] is read and not yet consumed
	ioff int
	scan http1.HeadScan // of in[ioff:], for the next head
	out  []byte         // out[ooff:] is to be written
	ooff int

	readable, writable bool // edge-triggered readiness not used up yet
	hup                bool // the client closed its side, or the connection failed
	broken             bool // a write failed: nothing more can be sent
	closed             bool

	rq      *loopRequest   // the request being served, nil between requests
	pend    pendingRequest // a request whose body is on its way
	nreq    int            // requests begun on the connection
	closing bool           // close once out is written
	linger  bool           // closing: write side shut, reading the client's last bytes
	born    time.Time      // accepted then
	timer   *evloop.Timer
	waiting clientWait // what the timer is for
	writeBy time.Time  // the client must take pending output by then
}

type clientWait uint8

const (
	waitNone  clientWait = iota
	waitHead             // a head (or its first byte on a new connection)
	waitBody             // the rest of a small body
	waitIdle             // the next request on a kept-alive connection
	waitWrite            // the client to take a response
	waitLinger
	waitGrace // shutting down: a new connection's first request
)

// maxPendingOut bounds what the loop buffers for a slow client before it stops reading
// the dyno's response (beyond what the client's socket buffers).
const maxPendingOut = 64 << 10

func (s *loopServer) adopt(fd int, remote string) {
	if s.shutting {
		unix.Close(fd)
		return
	}
	c := &loopClient{s: s, fd: fd, writable: true, base: &http.Request{RemoteAddr: remote}, born: time.Now()}
	c.resume = c.run
	c.timer = s.ev.After(s.cfg.HeaderReadTimeout, c.timedOut)
	c.waiting = waitHead
	if err := s.ev.Add(fd, c); err != nil {
		s.r.log.Warn("failed to add a connection to the event loop", "error", err)
		unix.Close(fd)
		c.timer.Stop()
		return
	}
	s.clients[c] = struct{}{}
}

// Ready takes the socket's events.
func (c *loopClient) Ready(ev uint32) {
	if ev&evloop.In != 0 {
		c.readable = true
	}
	if ev&evloop.Ended != 0 {
		c.hup, c.readable = true, true
	}
	if ev&evloop.Out != 0 {
		c.writable = true
	}
	c.run()
}

// run moves the connection on as far as it can go now.
func (c *loopClient) run() {
	if c.closed {
		return
	}
	if c.ooff < len(c.out) && c.writable {
		c.flush()
		if c.closed {
			return
		}
	}
	switch {
	case c.linger:
		c.discard()
	case c.rq != nil:
		c.rq.clientMoved()
	case c.closing:
		if c.ooff == len(c.out) || c.broken {
			c.startLinger()
		}
	default:
		c.nextRequest()
	}
}

// nextRequest reads and begins the next request, when the previous answer is out.
func (c *loopClient) nextRequest() {
	for c.ooff == len(c.out) {
		if c.pend.req == nil && !c.readHead() {
			return
		}
		p := &c.pend
		if need := p.headLen + int(p.req.ContentLength); len(c.in)-c.ioff < need {
			// The body is on its way.
			if c.waiting != waitBody {
				c.wait(waitBody, c.s.r.cfg.BodyReadTimeout)
			}
			if !c.readable {
				return
			}
			if !c.fill() {
				c.failPending(H27) // the client left mid-body
				return
			}
			continue
		}
		c.ioff += p.headLen
		body := c.in[c.ioff : c.ioff+int(p.req.ContentLength)]
		c.ioff += len(body)
		c.stopWaiting()
		c.rq = newLoopRequest(c, p, body)
		*p = pendingRequest{}
		c.rq.route()
		return
	}
}

// failPending answers the request whose body is on its way with code (the connection
// closes after it), and logs it.
func (c *loopClient) failPending(code *Code) {
	p := c.pend
	c.pend = pendingRequest{}
	c.ioff = len(c.in)
	c.stopWaiting()
	c.rq = newLoopRequest(c, &p, nil)
	c.rq.fail(code)
}

// pendingRequest is a request whose head is read, while its body is on its way.
type pendingRequest struct {
	req     *http.Request
	app     *app
	headLen int
	start   time.Time // when its head was in: the request's start, as for the goroutine server
}

// readHead reads and parses the next request head. It says false when there is none
// yet, or the connection was refused, closed or handed to the goroutine server.
func (c *loopClient) readHead() bool {
	s := c.s
	for {
		start, end, err := c.scan.Find(c.in[c.ioff:], s.cfg.MaxHeaderBytes+4096)
		if err == http1.ErrIncomplete {
			switch {
			case len(c.in) > c.ioff && c.waiting != waitHead && c.waiting != waitGrace:
				c.wait(waitHead, s.cfg.HeaderReadTimeout) // a head began
			case len(c.in) == c.ioff && c.waiting == waitNone:
				c.wait(waitIdle, s.cfg.IdleTimeout)
			}
			if !c.readable {
				return false
			}
			if !c.fill() {
				c.close() // the client left or failed between requests (or mid-head)
				return false
			}
			continue
		}
		if err != nil {
			c.refuse(err)
			return false
		}
		req, expect, perr := http1.ParseRequestHead(c.in[c.ioff+start:c.ioff+end], c.base)
		if perr != nil {
			c.refuse(perr)
			return false
		}
		a, ok := s.servable(req, expect)
		if !ok {
			c.fallback()
			return false
		}
		c.nreq++
		c.pend = pendingRequest{req: req, app: a, headLen: end, start: time.Now()}
		return true
	}
}

// fill reads what the client sent into in. It says false when the client closed its
// side or the connection failed.
func (c *loopClient) fill() bool {
	if c.ioff > 0 && c.ioff == len(c.in) {
		c.in, c.ioff = c.in[:0], 0
	}
	if len(c.in) == cap(c.in) {
		limit := c.s.cfg.MaxHeaderBytes + 4096 + c.s.r.cfg.BodyPrefetch + 1
		if c.ioff > 0 {
			c.in = append(c.in[:0], c.in[c.ioff:]...)
			c.ioff = 0
		}
		if len(c.in) == cap(c.in) {
			if cap(c.in) >= limit {
				// Fuller than any head and prefetched body: FindHead refuses it.
				c.readable = false
				return true
			}
			grown := make([]byte, len(c.in), min(max(4096, 2*cap(c.in)), limit))
			copy(grown, c.in)
			c.in = grown
		}
	}
	n, err := sysconn.RawRead(c.fd, c.in[len(c.in):cap(c.in)])
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		c.readable = false
		return true
	case err != 0 || n == 0:
		c.readable = false
		c.hup = true
		return false
	}
	if len(c.in)+n < cap(c.in) && !c.hup {
		// A short read: the socket holds nothing more for now (after the client's
		// close, the next read finds the end).
		c.readable = false
	}
	c.in = c.in[:len(c.in)+n]
	return true
}

// send queues b for the client. It is written when the loop is done with what it has
// for the client now (flush), so that a response's head and body go out in one call.
func (c *loopClient) send(b []byte) {
	if c.broken || c.closed {
		return
	}
	c.out = append(c.out, b...)
}

// reset says whether the client reset the connection (what a client that closed it
// does when more of a response arrives): its TCP state is CLOSE.
func (c *loopClient) reset() bool {
	info, err := unix.GetsockoptTCPInfo(c.fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	return err == nil && info.State == unix.BPF_TCP_CLOSE
}

// flushPending writes what is queued, when the socket can take it.
func (c *loopClient) flushPending() {
	if c.ooff < len(c.out) && c.writable && !c.closed && !c.broken {
		c.flush()
	}
}

// flush writes pending output until the socket takes no more. A failed write marks the
// connection broken (and the request in progress hears of it).
func (c *loopClient) flush() {
	for c.ooff < len(c.out) {
		n, err := sysconn.RawSend(c.fd, c.out[c.ooff:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			c.writable = false
			break
		}
		if err != 0 {
			c.fail()
			return
		}
		c.ooff += n
		if c.ooff < len(c.out) {
			c.writable = false // a short write: the socket's buffer is full
			break
		}
	}
	if c.ooff > 0 && c.ooff >= len(c.out)-c.ooff {
		// What was written goes once it is at least what is left, so that a response
		// relayed while the client lags never keeps more than twice what is pending.
		c.out, c.ooff = c.out[:copy(c.out, c.out[c.ooff:])], 0
	}
	if c.ooff == len(c.out) {
		c.out, c.ooff = c.out[:0], 0
		if c.waiting == waitWrite {
			c.stopWaiting()
		}
		if cap(c.out) > 64<<10 && c.rq == nil {
			c.out = nil // a large buffer is not kept for an idle connection
		}
		return
	}
	c.armWrite()
}

// armWrite makes sure the client must take pending output within the write timeout.
func (c *loopClient) armWrite() {
	d := c.s.cfg.WriteTimeout
	if c.rq != nil {
		d = c.rq.timeout
	}
	if c.waiting == waitWrite && time.Until(c.writeBy) >= d/2 {
		return
	}
	c.writeBy = time.Now().Add(d)
	c.wait(waitWrite, d)
}

// fail ends a connection whose write failed or timed out.
func (c *loopClient) fail() {
	c.broken = true
	c.dropOutput()
	if c.rq != nil {
		c.rq.clientBroke()
		return
	}
	c.close()
}

// dropOutput throws away what was not written to the client; the request in progress
// counts only the bytes that went out.
func (c *loopClient) dropOutput() {
	if rq := c.rq; rq != nil {
		rq.st.rec.bytes = max(0, rq.st.rec.bytes-int64(len(c.out)-c.ooff))
	}
	c.out, c.ooff = c.out[:0], 0
}

func (c *loopClient) wait(w clientWait, d time.Duration) {
	c.waiting = w
	c.timer.Reset(d)
}

func (c *loopClient) stopWaiting() {
	c.waiting = waitNone
	c.timer.Stop()
}

func (c *loopClient) timedOut() {
	switch c.waiting {
	case waitWrite:
		c.fail()
	case waitBody:
		c.failPending(codeClientTimeout) // as a body prefetch that timed out
	case waitNone:
	default:
		c.close()
	}
}

// refuse answers a request the router will not route, and the connection closes.
func (c *loopClient) refuse(err error) {
	b, ok := http1.AppendRefusal(nil, err)
	if !ok {
		c.close()
		return
	}
	if status, reason, ambiguous, _ := http1.RefusalInfo(err); ambiguous {
		c.s.r.log.Warn("rejected a request with both Content-Length and Transfer-Encoding", "client", c.base.RemoteAddr)
	} else {
		c.s.r.log.Debug("refused a malformed request", "client", c.base.RemoteAddr, "status", status, "reason", reason)
	}
	c.closing = true
	c.send(b)
	c.run()
}

// requestEnded is called by the request in progress once it is over (answered, or
// failed): the connection goes on with the next request, or closes.
func (c *loopClient) requestEnded(closeConn bool) {
	c.rq = nil
	if closeConn || c.s.shutting {
		c.closing = true
	}
	if c.ioff == len(c.in) && cap(c.in) > 4096 {
		c.in, c.ioff = nil, 0 // a large buffer is not kept for an idle connection
	}
	if c.ooff == len(c.out) && cap(c.out) > 64<<10 {
		c.out, c.ooff = nil, 0
	}
	c.s.ev.Post(c.resume) // not in this call: a burst of pipelined answers is no deeper a stack
}

// shutdown closes the connection when it waits for a request; one that has not sent its
// first request yet has what is left of a grace period from its accept.
func (c *loopClient) shutdown() {
	grace := http1.NewConnGrace - time.Since(c.born)
	switch {
	case c.rq != nil || c.closing || c.ooff < len(c.out):
	case c.nreq == 0 && len(c.in) == c.ioff && grace > 0:
		c.wait(waitGrace, grace)
	case len(c.in) == c.ioff:
		c.close()
	}
}

// startLinger shuts the write side and reads what the client still sends, for a while,
// so that the close does not reset the connection under the last response.
func (c *loopClient) startLinger() {
	if c.broken || unix.Shutdown(c.fd, unix.SHUT_WR) != nil {
		c.close()
		return
	}
	c.linger = true
	c.wait(waitLinger, http1.LingerTime)
	c.discard()
}

func (c *loopClient) discard() {
	var buf [4096]byte
	for reads := 0; c.readable; reads++ {
		if reads == readsPerTurn {
			c.s.ev.Post(c.resume) // a client that keeps sending takes turns too
			return
		}
		n, err := sysconn.RawRead(c.fd, buf[:])
		if err == syscall.EAGAIN {
			c.readable = false
			return
		}
		if err != 0 || n == 0 {
			c.close()
			return
		}
	}
}

// fallback hands the connection, with what was read of it, to the goroutine server.
func (c *loopClient) fallback() {
	s := c.s
	c.forget()
	f := os.NewFile(uintptr(c.fd), "client")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		s.r.log.Warn("failed to hand a connection to the goroutine server", "error", err)
		return
	}
	s.fb.ServeConn(nc, c.in[c.ioff:])
}

// forget takes the connection out of the loop without closing its socket.
func (c *loopClient) forget() {
	c.closed = true
	c.timer.Stop()
	c.s.ev.Remove(c.fd)
	delete(c.s.clients, c)
	c.s.checkDrained()
}

func (c *loopClient) close() {
	if c.closed {
		return
	}
	if c.rq != nil {
		c.dropOutput()
		c.rq.clientBroke()
	}
	c.forget()
	unix.Close(c.fd)
}
