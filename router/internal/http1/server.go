package http1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dynogrid/dynogrid/router/internal/sysconn"
)

// Handler serves one request. A request waits in the handler as long as it needs (a
// router queue); the connection reads nothing more meanwhile unless the handler calls
// Response.WatchLeave. A handler that returns without writing a head closes the
// connection with no answer.
type Handler interface {
	ServeHTTP1(w *Response, req *http.Request)
}

// Config bounds what a client may take and send. Every field must be set.
type Config struct {
	HeaderReadTimeout time.Duration // a connection's first head, and a head arriving in parts
	IdleTimeout       time.Duration // between requests on a kept-alive connection
	WriteTimeout      time.Duration // each response write, until the handler sets its own
	BodyReadTimeout   time.Duration // reading past a body the handler left unread
	MaxHeaderBytes    int           // a request head's size, as net/http's
	Logger            hclog.Logger
}

// Server accepts connections and serves the requests on each in turn (keep-alive and
// pipelining), and shuts down gracefully. It is the router's own HTTP/1.1 server rather
// than net/http's: per request it makes fewer system calls and goroutine switches (no
// background read while a request is served; see WatchLeave), and its parser refuses
// ambiguous framing outright (request.go).
type Server struct {
	cfg      Config
	h        Handler
	log      hclog.Logger
	ln       net.Listener // nil for a server that only gets connections from ServeConn
	shutting atomic.Bool
	serving  atomic.Bool // Serve has begun: Shutdown waits for its accept loop to return

	mu    sync.Mutex
	conns map[*clientConn]struct{}
	done  chan struct{} // closed when the accept loop has returned
}

// Connection states, for shutdown: connections that wait for a request are closed at
// once, new ones get a grace period to send theirs, busy ones finish their response.
const (
	connNew int32 = iota
	connIdle
	connActive
	connClosed
)

// NewConnGrace is how long a shutdown waits for a new connection's first request.
const NewConnGrace = 5 * time.Second

// maxDiscard is how much of a request body the router reads past and throws away (a body
// the router answered without forwarding) to keep the connection alive.
const maxDiscard = 256 << 10

// readerSize is the size of a connection's read buffer.
const readerSize = 4096

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

// NewServer returns a server for ln that hands each request to h. ln is nil for a
// server that only serves connections accepted elsewhere (ServeConn).
func NewServer(ln net.Listener, h Handler, cfg Config) *Server {
	return &Server{cfg: cfg, h: h, log: cfg.Logger, ln: ln, conns: make(map[*clientConn]struct{}), done: make(chan struct{})}
}

// Serve accepts connections until the listener closes. After Shutdown it returns nil.
func (f *Server) Serve() error {
	if f.ln == nil {
		return errNoListener
	}
	f.serving.Store(true)
	defer close(f.done)
	var backoff time.Duration
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if f.shutting.Load() {
				return nil
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				f.log.Warn("failed to accept a connection; retrying", "error", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		cc := f.newConn(c)
		// A connection accepted as shutdown begins is served like the others (it may
		// hold a request already): shutdown counts it once the loop has returned.
		f.mu.Lock()
		f.conns[cc] = struct{}{}
		f.mu.Unlock()
		go cc.serve()
	}
}

var errNoListener = errors.New("http1: the server has no listener")

// ServeConn serves c, a connection accepted elsewhere (an event loop hands over those
// it does not serve itself), for the rest of its life, as if Serve had accepted it then.
// buffered is what was read of c already (the start of a request, maybe more): it is
// copied, and read before c. c belongs to the server from then on. It returns at once;
// a ServeConn after Shutdown began closes c.
//
// The first request's header timeout counts from the handover. A connection handed over
// with bytes is active, as serve makes one that a byte reached: Shutdown lets it finish
// its request (a head still in parts, until the header timeout), as it would have had
// the connection come from Serve. One with none is new, and Shutdown gives it
// NewConnGrace from the handover to send a request.
func (f *Server) ServeConn(c net.Conn, buffered []byte) {
	if f.shutting.Load() {
		c.Close()
		return
	}
	cc := f.newConn(c)
	if len(buffered) > 0 {
		// The bytes go into the read buffer itself, not a reader ahead of it: parking
		// and watchLeave look at the read buffer alone for what is left to read. More
		// than it holds gets a buffer that size, for the connection's life.
		if len(buffered) > cc.br.Size() {
			readers.Put(cc.br)
			cc.br = bufio.NewReaderSize(nil, len(buffered))
		}
		cc.br.Reset(&prefixed{p: buffered, c: cc.c})
		_, _ = cc.br.Peek(len(buffered)) // one read of buffered, whole: c is not read
		cc.state.Store(connActive)
	}
	// serve sets the first head's deadline only before it reads an empty buffer.
	_, _ = sysconn.ExtendReadDeadline(cc.c, cc.born.Add(f.cfg.HeaderReadTimeout), sysconn.RenewSlack(f.cfg.HeaderReadTimeout))
	// Shutdown counts the connections under f.mu once shutting is set: one registered
	// here is counted, one that comes later sees shutting.
	f.mu.Lock()
	if f.shutting.Load() {
		f.mu.Unlock()
		cc.cancel()
		c.Close()
		return
	}
	f.conns[cc] = struct{}{}
	f.mu.Unlock()
	go cc.serve()
}

// newConn sets a connection up for serving: c's reader and writer, and the base of its
// requests.
func (f *Server) newConn(c net.Conn) *clientConn {
	c = sysconn.Wrap(c) // a Conn already, or not TCP: c itself
	br, bw := readers.Get().(*bufio.Reader), writers.Get().(*bufio.Writer)
	br.Reset(c)
	bw.Reset(c)
	cc := &clientConn{f: f, c: c, br: br, bw: bw, remote: c.RemoteAddr().String(), born: time.Now()}
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		cc.tls = &st
	}
	cc.ctx, cc.cancel = context.WithCancel(context.Background())
	cc.base = (&http.Request{RemoteAddr: cc.remote, TLS: cc.tls}).WithContext(cc.ctx)
	return cc
}

// prefixed reads p, then c: the reader of a connection handed over with bytes read of
// it already (ServeConn).
type prefixed struct {
	p []byte
	c net.Conn
}

func (r *prefixed) Read(b []byte) (int, error) {
	if r.p == nil {
		return r.c.Read(b)
	}
	n := copy(b, r.p)
	if r.p = r.p[n:]; len(r.p) == 0 {
		r.p = nil // the caller's buffer is not kept
	}
	return n, nil
}

// Shutdown stops accepting and lets every connection finish the request it is in; those
// that wait for a request are closed. When ctx ends first, the rest are closed.
func (f *Server) Shutdown(ctx context.Context) error {
	f.shutting.Store(true)
	if f.ln != nil {
		f.ln.Close()
	}
	// An accept loop that has not begun accepts nothing now that ln is closed: only
	// one that has is waited for.
	if f.serving.Load() {
		select {
		case <-f.done:
		case <-ctx.Done():
		}
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if f.closeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			f.mu.Lock()
			for cc := range f.conns {
				cc.c.Close()
			}
			f.mu.Unlock()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// closeIdle closes connections that wait for a request and says how many remain.
func (f *Server) closeIdle() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for cc := range f.conns {
		st := cc.state.Load()
		if (st == connIdle || st == connNew && time.Since(cc.born) > NewConnGrace) && cc.state.CompareAndSwap(st, connClosed) {
			cc.c.Close()
		}
	}
	return len(f.conns)
}

// clientConn is one client connection and the requests on it.
type clientConn struct {
	f      *Server
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	remote string
	tls    *tls.ConnectionState // nil on a plain connection
	born   time.Time
	state  atomic.Int32
	// ctx ends when the client is known to have left (see watchLeave) or the
	// connection ends. Requests carry it.
	ctx      context.Context
	cancel   context.CancelFunc
	base     *http.Request // what each request starts as: the context, address and TLS state
	head     []byte        // the buffer request heads are read into
	writeBy  time.Time     // the write deadline in force
	broken   bool          // a write failed: the connection cannot carry another response
	hijacked bool
	watching chan struct{} // closed when the watchLeave goroutine is done
}

func (cc *clientConn) serve() {
	defer cc.end()
	cfg := &cc.f.cfg
	for n := 0; ; n++ {
		wait := cfg.IdleTimeout
		if n == 0 {
			wait = cfg.HeaderReadTimeout
		}
		if cc.br.Buffered() == 0 {
			// One that passes less than sysconn.RenewSlack after the one asked (set by the
			// previous request, when nothing else changed it since) stays: a timer update
			// spared per request; the client gets up to that much more idle time.
			_, _ = sysconn.ExtendReadDeadline(cc.c, time.Now().Add(wait), sysconn.RenewSlack(wait))
			if _, err := cc.br.Peek(1); err != nil {
				return
			}
		}
		if st := cc.state.Load(); st == connClosed || !cc.state.CompareAndSwap(st, connActive) {
			return
		}
		// A head that arrived whole needs no deadline of its own. The deadline in force
		// stays after the head: every later read of the client sets its own (body
		// prefetch, watchLeave, body discard, upgrade).
		// The first head's deadline counts from the accept, set above.
		if n > 0 && !cc.headBuffered() {
			_ = cc.c.SetReadDeadline(time.Now().Add(cfg.HeaderReadTimeout))
		}
		req, body, expect, err := cc.readRequest()
		if err != nil {
			cc.refuse(err)
			return
		}
		w := &Response{cc: cc, req: req, writeTimeout: cfg.WriteTimeout, body: body}
		if expect && body != nil {
			body.onFirstRead = w.sendContinue
		}
		if !cc.handle(w, req) {
			return
		}
		if w.hijacked {
			cc.hijacked = true
			return
		}
		cc.unwatch()
		if !w.wroteHead {
			return // no answer (the client left: H27): close, never a default 200
		}
		w.finish()
		if w.closeConn || cc.broken || !cc.discardBody(body) {
			return
		}
		cc.state.Store(connIdle)
		if cc.f.shutting.Load() {
			return
		}
	}
}

// headBuffered says whether a whole request head is in the read buffer already (or
// one too large, which readHead refuses at once).
func (cc *clientConn) headBuffered() bool {
	b, _ := cc.br.Peek(cc.br.Buffered())
	_, _, err := FindHead(b, cc.f.cfg.MaxHeaderBytes+4096)
	return err != ErrIncomplete
}

// readRequest reads the next request head and attaches its body. expect says the
// client waits for "100 Continue" before it sends the body.
func (cc *clientConn) readRequest() (req *http.Request, body *bodyReader, expect bool, err error) {
	cfg := &cc.f.cfg
	head, err := readHead(cc.br, cfg.MaxHeaderBytes+4096, cc.head)
	if err != nil {
		return nil, nil, false, err
	}
	if cap(head) <= 4096 {
		cc.head = head[:0] // a large one is not kept for the life of the connection
	} else {
		cc.head = nil
	}
	req, expect, err = ParseRequestHead(head, cc.base)
	if err != nil {
		return nil, nil, false, err
	}
	if req.ContentLength != 0 {
		body = newBodyReader(cc.br, req.ContentLength, cfg.MaxHeaderBytes)
		req.Body = body
	}
	return req, body, expect, nil
}

// sendContinue tells a client that waits for it to send its body.
func (w *Response) sendContinue() {
	if w.wroteHead {
		return
	}
	w.cc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	w.cc.armWrite(w.writeTimeout)
	w.cc.fail(w.cc.bw.Flush())
}

// handle runs the router on one request. It says false when the request was aborted
// (http.ErrAbortHandler) or panicked: the connection must close.
func (cc *clientConn) handle(w *Response, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				cc.f.log.Error("panic serving a request", "client", cc.remote, "panic", v, "stack", string(buf))
			}
			ok = false
		}
	}()
	cc.f.h.ServeHTTP1(w, req)
	return true
}

// refuse answers a request the router will not route, and the connection closes.
// Read errors and timeouts close it without an answer.
func (cc *clientConn) refuse(err error) {
	status, reason, ambiguous, ok := RefusalInfo(err)
	if !ok {
		return
	}
	if ambiguous {
		cc.f.log.Warn("rejected a request with both Content-Length and Transfer-Encoding", "client", cc.remote)
	} else {
		cc.f.log.Debug("refused a malformed request", "client", cc.remote, "status", status, "reason", reason)
	}
	b, _ := AppendRefusal(cc.bw.AvailableBuffer(), err)
	cc.bw.Write(b)
}

// discardBody reads past what the router did not read of a request body, so that the
// connection can carry the next request. It says false when the connection must close.
func (cc *clientConn) discardBody(body *bodyReader) bool {
	if body == nil || body.done {
		return true
	}
	if body.stuck() {
		return false
	}
	_ = cc.c.SetReadDeadline(time.Now().Add(cc.f.cfg.BodyReadTimeout))
	n, _ := io.CopyN(io.Discard, body, maxDiscard+1)
	_ = cc.c.SetReadDeadline(time.Time{})
	return body.done && n <= maxDiscard
}

// watchLeave starts noticing the client closing its connection while its request waits
// in a queue, which ends cc.ctx (H27). Only a connection with nothing left to read of
// the request can be watched: a byte arriving then starts a pipelined request and stays
// buffered for it. unwatch stops the watch before the connection is read again.
func (cc *clientConn) watchLeave() {
	if cc.watching != nil || !skipBlankLines(cc.br) {
		return
	}
	done := make(chan struct{})
	cc.watching = done
	_ = cc.c.SetReadDeadline(time.Time{})
	go func() {
		defer close(done)
		for {
			if _, err := cc.br.Peek(1); err != nil {
				if !IsTimeout(err) {
					cc.cancel()
				}
				return
			}
			if !skipBlankLines(cc.br) {
				return // the next request is coming: the client is there
			}
		}
	}()
}

// skipBlankLines drops the empty lines buffered ahead of the next request head (some
// clients send CRLF after a body; readHead skips them too). It says whether nothing else
// is buffered.
func skipBlankLines(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	start, _, _ := FindHead(b, math.MaxInt)
	_, _ = br.Discard(start)
	return start == len(b)
}

func (cc *clientConn) unwatch() {
	if cc.watching == nil {
		return
	}
	_ = cc.c.SetReadDeadline(time.Unix(1, 0))
	<-cc.watching
	cc.watching = nil
	_ = cc.c.SetReadDeadline(time.Time{})
}

// armWrite makes sure that a write deadline at least half of d away is in force: a
// client must accept response bytes within d (at least d/2), or the response fails, so
// that a client that stops reading cannot hold a dyno. Renewing only at half time keeps
// timer updates off most requests.
func (cc *clientConn) armWrite(d time.Duration) {
	now := time.Now()
	if cc.writeBy.Sub(now) >= d/2 {
		return
	}
	cc.writeBy = now.Add(d)
	_ = cc.c.SetWriteDeadline(cc.writeBy)
}

// fail notes a failed write: the connection cannot carry another response.
func (cc *clientConn) fail(err error) {
	if err != nil {
		cc.broken = true
	}
}

// draining says whether the router is shutting down: responses close their connection.
func (cc *clientConn) draining() bool { return cc.f.shutting.Load() }

// IsTimeout says whether err is a deadline that passed.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// LingerTime bounds how long a closing connection waits for the client to read the
// last response before the socket closes (closing with unread input would reset the
// connection and could destroy that response in flight).
const LingerTime = 500 * time.Millisecond

func (cc *clientConn) end() {
	cc.unwatch()
	cc.cancel()
	cc.state.Store(connClosed)
	cc.f.mu.Lock()
	delete(cc.f.conns, cc)
	cc.f.mu.Unlock()
	if cc.hijacked {
		return // the upgrade owns the connection and its buffers now
	}
	if !cc.broken && cc.bw.Buffered() > 0 {
		_ = cc.c.SetWriteDeadline(time.Now().Add(LingerTime))
		_ = cc.bw.Flush()
	}
	if tc, ok := cc.c.(interface{ CloseWrite() error }); ok && tc.CloseWrite() == nil {
		_ = cc.c.SetReadDeadline(time.Now().Add(LingerTime))
		_, _ = io.CopyN(io.Discard, cc.c, maxDiscard)
	}
	cc.c.Close()
	cc.br.Reset(nil)
	cc.bw.Reset(nil)
	if cc.br.Size() == readerSize { // not one made larger for a handover's bytes
		readers.Put(cc.br)
	}
	writers.Put(cc.bw)
}
