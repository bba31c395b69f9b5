package router

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/dynogrid/router/internal/evloop"
	"github.com/dynogrid/dynogrid/router/internal/http1"
	"github.com/dynogrid/dynogrid/router/internal/sysconn"
)

// loopDyno is one connection of the event loop to a dyno, kept alive across requests.
// While it carries a request it holds the request's lease; it gives the lease back when
// the response is over, also when nobody waits for the response any more (the client
// left, or was answered H12): then it reads the response to its end and throws it away
// (draining, as lease.drain does), so that the dyno gets its next request only once it
// is done with this one.
type loopDyno struct {
	s      *loopServer
	fd     int
	d      *dyno
	resume func() // dc.step, made once
	in     []byte // in[ioff:] is read and not yet consumed
	ioff   int
	scan   http1.HeadScan // of in[ioff:], for the response head

	readable, writable, hup bool
	dead                    bool // idle, and the dyno closed it or sent something unasked
	closed                  bool

	owner   *loopRequest // who the response goes to; nil when idle or draining
	l       lease        // held while a request is on the connection
	method  string
	timeout time.Duration
	wire    []byte // what is left to write of the request
	written int

	phase   dynoPhase
	resp    *http.Response
	kind    http1.BodyKind
	remain  int64
	chunks  http1.ChunkDecoder
	got     bool // a byte of the response arrived
	forever bool // draining a response the router answered H12: no time limit
	// The dyno must send part of its response every timeout once its head is in: the
	// timer, set once, is moved on from lastRead only when it fires.
	lastRead time.Time
	timer    *evloop.Timer
}

type dynoPhase uint8

const (
	phaseIdle dynoPhase = iota
	phaseHead
	phaseBody
	phaseUnframed // the router gave up on a response it cannot frame: see lease.drainUnframed
)

// dial connects to the dyno of rq's lease in a goroutine (dials are rare: connections
// are kept), and hands the connection to rq on the loop.
func (s *loopServer) dial(rq *loopRequest) {
	d := rq.l.d
	start := time.Now()
	go func() {
		c, err := s.r.dialer.DialContext(context.Background(), "tcp", d.addr)
		fd := -1
		if err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
				fd, err = takeFD(tc)
			} else {
				c.Close()
				err = errors.New("not a TCP connection")
			}
		}
		connect := time.Since(start)
		if !s.ev.Post(func() { s.dialed(rq, d, fd, connect, err) }) {
			// The loop has stopped (the router shut down): the request is over.
			if fd >= 0 {
				unix.Close(fd)
			}
			rq.l.settle(ended)
		}
	}()
}

func (s *loopServer) dialed(rq *loopRequest, d *dyno, fd int, connect time.Duration, err error) {
	var dc *loopDyno
	if err == nil {
		dc = &loopDyno{s: s, fd: fd, d: d, writable: true}
		dc.resume = dc.step
		dc.timer = s.ev.After(time.Hour, dc.timedOut)
		dc.timer.Stop()
		if err = s.ev.Add(fd, dc); err != nil {
			unix.Close(fd)
			dc = nil
		} else {
			s.dynos[dc] = struct{}{}
		}
	}
	if rq.over {
		// The request ended while the dyno was dialed (the router shuts down).
		if dc != nil {
			dc.close()
		}
		rq.l.settle(ended)
		return
	}
	rq.dialed(dc, connect, err)
}

// Ready takes the socket's events.
func (dc *loopDyno) Ready(ev uint32) {
	if ev&evloop.In != 0 {
		dc.readable = true
	}
	if ev&evloop.Ended != 0 {
		dc.hup, dc.readable = true, true
	}
	if ev&evloop.Out != 0 {
		dc.writable = true
	}
	dc.step()
}

// begin sends a request on the connection, which now holds its lease.
func (dc *loopDyno) begin(rq *loopRequest, l lease, method string, timeout time.Duration, wire []byte) {
	dc.owner, dc.l, dc.method, dc.timeout = rq, l, method, timeout
	dc.wire, dc.written = wire, 0
	dc.phase, dc.resp, dc.got, dc.forever = phaseHead, nil, false, false
	rq.sent = time.Now()
	dc.timer.Reset(timeout)
	dc.step()
}

// step moves the request on the connection on as far as it can go now, and writes
// what it has for the client.
func (dc *loopDyno) step() {
	if dc.closed {
		return
	}
	if o := dc.owner; o != nil {
		defer o.c.flushPending()
	}
	dc.advance()
}

func (dc *loopDyno) advance() {
	switch dc.phase {
	case phaseIdle:
		if dc.readable {
			dc.dead = true // closed by the dyno, or bytes nobody asked for
			if dc.s.idle[dc.d] == dc {
				delete(dc.s.idle, dc.d)
			}
			dc.close()
		}
		return
	case phaseUnframed:
		if dc.readable {
			dc.close() // the dyno's next move: its close, or more bytes
		}
		return
	}
	if len(dc.wire) > 0 {
		if dc.writable {
			dc.writeWire()
		}
		if dc.closed || len(dc.wire) > 0 && !dc.readable {
			return
		}
		// The rest of the request waits for room, and the dyno may answer before it
		// read it all (the connection is not reused then).
	}
	reads := 0
	for !dc.closed {
		switch dc.phase {
		case phaseHead:
			if dc.readHead() {
				continue
			}
		case phaseBody:
			if dc.heldBack() {
				if dc.owner.c.flushPending(); dc.heldBack() || dc.closed {
					return // the client's pace: its connection's Out event goes on
				}
			}
			if dc.relay(); dc.phase != phaseBody {
				return // the response is over
			}
		default:
			return
		}
		if dc.closed {
			return
		}
		if !dc.readable {
			return
		}
		if reads == readsPerTurn {
			// A fast or endless response takes turns with the other sockets: the
			// rest is read on a later turn (edge-triggered: no event comes for it).
			dc.s.ev.Post(dc.resume)
			return
		}
		reads++
		if !dc.fill() {
			dc.eof()
			return
		}
	}
}

// readsPerTurn bounds the reads of a connection in one turn of the loop (of up to 32 KiB
// each from a dyno, the size of its buffer; 4 KiB from a lingering client).
const readsPerTurn = 2

// heldBack says whether the client has more of the response to take than the loop
// buffers for it: the loop reads no more of the dyno until it has taken some.
func (dc *loopDyno) heldBack() bool {
	o := dc.owner
	return o != nil && len(o.c.out)-o.c.ooff > maxPendingOut
}

// writeWire writes what is left of the request. It says false when the connection
// cannot take more now, or failed.
func (dc *loopDyno) writeWire() bool {
	for len(dc.wire) > 0 {
		n, err := sysconn.RawSend(dc.fd, dc.wire)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			dc.writable = false
			return false
		}
		if err != 0 {
			dc.wire = nil
			owner := dc.owner
			if dc.written == 0 && refusedBeforeSend(err) && owner != nil {
				dc.owner, dc.l = nil, lease{}
				dc.close()
				owner.refused(err)
				return false
			}
			dc.fail(H13)
			return false
		}
		dc.written += n
		dc.wire = dc.wire[n:]
		if len(dc.wire) > 0 {
			dc.writable = false
			return false
		}
	}
	dc.wire = nil
	return true
}

// fill reads what the dyno sent into in. It says false at the connection's end.
func (dc *loopDyno) fill() bool {
	if dc.ioff == len(dc.in) {
		dc.in, dc.ioff = dc.in[:0], 0
	} else if dc.ioff > 0 && len(dc.in) == cap(dc.in) {
		dc.in = append(dc.in[:0], dc.in[dc.ioff:]...)
		dc.ioff = 0
	}
	if cap(dc.in) == 0 {
		dc.in = make([]byte, 0, 32<<10)
	} else if len(dc.in) == cap(dc.in) {
		if dc.phase != phaseHead || cap(dc.in) >= http1.MaxResponseHead+1 {
			dc.readable = false // consumed before more is read (the head's limit fails it)
			return true
		}
		grown := make([]byte, len(dc.in), min(2*cap(dc.in), http1.MaxResponseHead+1))
		copy(grown, dc.in)
		dc.in = grown
	}
	n, err := sysconn.RawRead(dc.fd, dc.in[len(dc.in):cap(dc.in)])
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		dc.readable = false
		return true
	case err != 0 || n == 0:
		dc.readable = false
		return false
	}
	if len(dc.in)+n < cap(dc.in) && !dc.hup {
		dc.readable = false // a short read (after the dyno's close, the next read finds the end)
	}
	dc.in = dc.in[:len(dc.in)+n]
	dc.got = true
	dc.lastRead = time.Now()
	return true
}

// readHead parses the response head once it is in. It says whether it did (false:
// more is needed, or the connection failed).
func (dc *loopDyno) readHead() bool {
	start, end, err := dc.scan.Find(dc.in[dc.ioff:], http1.MaxResponseHead)
	if err == http1.ErrIncomplete {
		return false
	}
	if err != nil {
		dc.fail(H17)
		return false
	}
	resp, err := http1.ParseResponseHead(dc.in[dc.ioff+start : dc.ioff+end]) //nolint:bodyclose // a head: the loop reads its body off the connection
	if err != nil {
		dc.fail(H17)
		return false
	}
	dc.ioff += end
	if resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		// An interim response: the final one follows, and none of it came yet
		// unless it is buffered.
		dc.got = dc.ioff < len(dc.in)
		return true
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if dc.owner != nil {
			dc.owner.st.rec.desc = "Dyno switched protocols unasked" // as upgrade does
		}
		dc.fail(H17)
		return false
	}
	dc.resp = resp
	dc.kind = http1.ResponseFraming(resp, dc.method)
	dc.remain = resp.ContentLength
	if dc.kind == http1.ChunkedBody {
		dc.chunks.Reset(http1.MaxTrailer, dynoBuffer)
	}
	dc.phase = phaseBody
	dc.lastRead = time.Now()
	if dc.owner != nil {
		dc.owner.responseHead(resp)
	}
	return true
}

// relay passes what is read of the response body on to the owner (or throws it away),
// and ends the response when that is all of it.
func (dc *loopDyno) relay() {
	p := dc.in[dc.ioff:]
	switch dc.kind {
	case http1.NoBody:
		dc.done()
		return
	case http1.LengthBody:
		n := min(int64(len(p)), dc.remain)
		dc.pass(p[:n])
		dc.ioff += int(n)
		if dc.remain -= n; dc.remain == 0 {
			dc.done()
		}
	case http1.ChunkedBody:
		// The data of every chunk in the buffer goes on as one piece (one chunk to
		// the client), as the goroutine server's copy does: many tiny chunks cost
		// the client's framing once.
		run := dc.s.chunkRun[:0]
		defer func() { dc.s.chunkRun = run[:0] }()
		for {
			consumed, data, err := dc.chunks.Decode(dc.in[dc.ioff:])
			if err == nil && dc.owner != nil {
				run = append(run, data...)
			}
			dc.ioff += consumed
			switch {
			case err != nil:
				dc.pass(run)
				dc.cut()
				return
			case dc.chunks.Done():
				dc.pass(run)
				dc.done()
				return
			case consumed == 0 && data == nil:
				dc.pass(run)
				return
			}
		}
	default: // until the connection closes
		dc.pass(p)
		dc.ioff += len(p)
	}
}

func (dc *loopDyno) pass(p []byte) {
	if dc.owner != nil && len(p) > 0 {
		dc.owner.body(p)
	}
}

// eof is the dyno closing the connection (or failing it) mid-request.
func (dc *loopDyno) eof() {
	switch {
	case dc.phase == phaseBody && dc.kind == http1.UntilClose:
		dc.resp.Close = true
		dc.done()
	case dc.phase == phaseBody:
		dc.cut()
	default:
		dc.fail(H13)
	}
}

// done ends a response that arrived whole: the connection is kept when it can carry
// the next request, and the lease settles.
func (dc *loopDyno) done() {
	owner, l := dc.owner, dc.l
	var trailer http.Header
	if dc.kind == http1.ChunkedBody {
		trailer = dc.chunks.Trailer()
	}
	reuse := !dc.resp.Close && dc.ioff == len(dc.in) && !dc.hup && dc.wire == nil
	dc.owner, dc.l, dc.phase, dc.resp = nil, lease{}, phaseIdle, nil
	dc.timer.Stop()
	if reuse {
		dc.in, dc.ioff = dc.in[:0], 0
		if cap(dc.in) > 32<<10 {
			dc.in = nil // a buffer grown for a large head is not kept for the next
		}
		dc.s.keep(dc.d, dc)
	} else {
		dc.close()
	}
	if owner == nil {
		l.settle(ended) // a drained response
		dc.s.checkDrained()
		return
	}
	l.settle(succeeded)
	owner.responseEnded(trailer)
}

// fail ends a request whose response never began, or failed before its head was
// whole (H12 is timedOut's): the connection closes and the request is answered code.
func (dc *loopDyno) fail(code *Code) {
	owner := dc.takeOwner()
	dc.close()
	if owner != nil {
		owner.failed(code)
	}
}

// cut ends a response that broke off mid-body (H18): the client's connection closes.
func (dc *loopDyno) cut() {
	owner := dc.takeOwner()
	dc.close()
	if owner != nil {
		owner.aborted()
	}
}

// detach leaves the response with nobody to take it: it is drained, and the dyno
// must send some of it every timeout.
func (dc *loopDyno) detach() {
	dc.owner = nil
	if len(dc.wire) > 0 {
		dc.close() // the dyno got part of the request only
		return
	}
	dc.s.ev.Post(dc.step) // it may have stopped reading at the client's pace
}

// unframed gives up on a response whose end can no longer be found, while the dyno may
// still be at work on it: the router closes its side and frees the dyno at its next
// move, or after unframedWait timeouts (as lease.drainUnframed).
func (dc *loopDyno) unframed() {
	dc.owner = nil
	dc.phase = phaseUnframed
	if unix.Shutdown(dc.fd, unix.SHUT_WR) != nil {
		dc.close()
		return
	}
	dc.timer.Reset(unframedWait * dc.timeout)
	dc.step()
}

// takeOwner returns the request the response goes to, which it no longer goes to.
func (dc *loopDyno) takeOwner() *loopRequest {
	o := dc.owner
	dc.owner = nil
	return o
}

func (dc *loopDyno) timedOut() {
	if dc.closed {
		return
	}
	switch dc.phase {
	case phaseHead:
		if dc.forever {
			return
		}
		owner := dc.takeOwner()
		if owner == nil {
			dc.close()
			return
		}
		owner.failed(H12)
		switch {
		case len(dc.wire) > 0:
			dc.close()
		case dc.got:
			// Part of a head arrived: where the response ends cannot be found.
			dc.unframed()
		default:
			// The dyno is busy until it answers.
			dc.forever = true
		}
	case phaseBody:
		if dc.heldBack() {
			// Not the dyno's silence: the loop does not read it while the client
			// catches up, and the client must take its output in time (waitWrite).
			dc.lastRead = time.Now()
		}
		if left := dc.timeout - time.Since(dc.lastRead); left > 0 {
			dc.timer.Reset(left)
			return
		}
		owner := dc.takeOwner()
		if owner == nil {
			dc.close()
			return
		}
		owner.aborted()
		dc.unframed() // the dyno went silent mid-response: it may still be at work
	default:
		dc.close()
	}
}

// close closes the connection; a lease it still holds settles as ended.
func (dc *loopDyno) close() {
	if dc.closed {
		return
	}
	dc.closed = true
	dc.timer.Stop()
	dc.s.ev.Remove(dc.fd)
	unix.Close(dc.fd)
	delete(dc.s.dynos, dc)
	if dc.s.idle[dc.d] == dc {
		delete(dc.s.idle, dc.d)
	}
	if l := dc.l; l.d != nil {
		dc.l = lease{}
		l.settle(ended)
	}
	dc.s.checkDrained()
}
