package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dynogrid/dynogrid/router/internal/sysconn"
)

// dyno is one web dyno of an app. Its identity fields never change; its state is guarded
// by its app's mutex, except conn, which belongs to whoever holds the dyno's lease (and
// to the app while it is idle).
type dyno struct {
	key     string // ID, address and name: a change of any of them is another dyno
	id      string // Consul service ID
	name    string // "web.1"
	release string
	addr    string // host:port
	app     *app

	idlePrev *dyno
	idleNext *dyno
	isIdle   bool
	busy     bool
	down     bool
	removed  bool
	failures atomic.Int32
	gone     chan struct{} // closed when a leaving dyno is given back
	leases   uint64        // how many times it was handed out (see lease)
	settled  uint64        // how many of its leases have settled

	conn *dynoConn
}

// Instance is one passing instance of an app's web service, as the router learns it
// from Consul (or from a test).
type Instance struct {
	ID      string // Consul service ID, unique per dyno
	Dyno    string // "web.1"
	Release string
	Address string
	Port    int
	// Per-app settings carried in service meta; the router uses the union of domains,
	// the largest timeout and maintenance when any instance asks for it.
	Domains     []string
	Timeout     time.Duration
	Maintenance bool
}

func (in Instance) addr() string { return net.JoinHostPort(in.Address, strconv.Itoa(in.Port)) }

func (in Instance) key() string { return in.ID + "|" + in.addr() + "|" + in.Dyno }

// dynoBuffer is the size of a dyno connection's buffers, which also bounds each line of
// a chunked response (its chunk lines and trailer lines).
const dynoBuffer = 16 << 10

// dynoConn is one HTTP/1.1 connection to a dyno, reused across requests.
type dynoConn struct {
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	written  int64           // bytes handed to the socket during the current request
	clean    bool            // the current request was written whole: reusable after its response
	raw      syscall.RawConn // for the liveness peek; nil when the connection has none
	deadline time.Time       // the read deadline in force
}

func (dc *dynoConn) Write(p []byte) (int, error) {
	n, err := dc.c.Write(p)
	dc.written += int64(n)
	return n, err
}

// send writes a request whose answer is read next, and waits for that answer to start
// coming (see sysconn.Conn.WriteAndWait).
func (dc *dynoConn) send(p []byte) error {
	sc, ok := dc.c.(*sysconn.Conn)
	if !ok || dc.br.Buffered() > 0 {
		_, err := dc.Write(p)
		return err
	}
	n, err := sc.WriteAndWait(p)
	dc.written += int64(n)
	return err
}

func (dc *dynoConn) close() {
	if dc != nil {
		dc.c.Close()
	}
}

// closeConnLocked drops the idle connection of a dyno. Caller holds the app's mutex and
// the dyno is not busy (or its lease is settling).
func (d *dyno) closeConnLocked() {
	d.conn.close()
	d.conn = nil
}

// take returns a connection to the dyno for one request, with a deadline timeout from
// now: the kept-alive one when the dyno has not closed it meanwhile, or a new one.
// connect is the time spent dialing. Only the holder of the busy dyno calls it.
func (d *dyno) take(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), timeout time.Duration) (dc *dynoConn, connect time.Duration, err error) {
	if dc = d.reuse(timeout); dc != nil {
		return dc, 0, nil
	}
	start := time.Now()
	c, err := dial(ctx, "tcp", d.addr)
	connect = time.Since(start)
	if err != nil {
		return nil, connect, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c = sysconn.Wrap(c)
	now := time.Now()
	_ = c.SetDeadline(now.Add(timeout))
	dc = &dynoConn{c: c, clean: true, deadline: now.Add(timeout)}
	if sc, ok := c.(syscall.Conn); ok {
		dc.raw, _ = sc.SyscallConn()
	}
	dc.br = bufio.NewReaderSize(c, dynoBuffer)
	dc.bw = bufio.NewWriterSize(dc, dynoBuffer)
	return dc, connect, nil
}

// reuse returns the dyno's kept-alive connection for one request, with a deadline
// timeout from now, when the dyno has not closed it meanwhile (closing it when it has),
// or nil. Only the holder of the busy dyno calls it.
func (d *dyno) reuse(timeout time.Duration) *dynoConn {
	dc := d.conn
	if dc == nil {
		return nil
	}
	d.conn = nil
	// Kept connections keep their last request's deadline (clearing it would cost a
	// timer update per request): the new one is in force before the connection is
	// looked at. One that passes less than sysconn.RenewSlack after the one asked stays
	// (a timer update spared): the dyno may get that much more than timeout, never less.
	now := time.Now()
	dc.deadline, _ = sysconn.ExtendDeadline(dc.c, now.Add(timeout), sysconn.RenewSlack(timeout))
	if dc.br.Buffered() == 0 && dc.alive() {
		dc.written = 0
		dc.clean = true
		return dc
	}
	dc.close()
	return nil
}

// keep stores a connection that finished a request cleanly for the next one.
func (d *dyno) keep(dc *dynoConn) { d.conn = dc }

// alive says whether an idle kept-alive connection is still open: the dyno has neither
// closed nor reset it nor sent anything unasked. It peeks without blocking.
func (dc *dynoConn) alive() bool {
	if sc, ok := dc.c.(*sysconn.Conn); ok {
		return sc.Alive()
	}
	if dc.raw == nil {
		return true
	}
	ok := false
	var buf [1]byte
	rerr := dc.raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return rerr == nil && ok
}

// refusedBeforeSend says whether err means the dyno never got any byte of the request:
// the dial failed, or the connection was refused or reset before anything was written.
func refusedBeforeSend(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNABORTED)
}
