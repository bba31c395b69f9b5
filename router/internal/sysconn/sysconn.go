// Package sysconn reads and writes TCP connections with raw system calls.
//
// A Go read or write of a socket goes through the runtime's system call bookkeeping
// (entersyscall, exitsyscall), which exists for calls that may block: a call that takes
// longer than a tick of the runtime's monitor thread (sysmon, 20 us) loses its P to
// another thread, and the monitor, woken, keeps waking every 20 us for a millisecond or
// more after. On a loopback socket, where a write runs the receiver's network stack too,
// 20 us is common, and in the router, pinned to one core, those hand-offs and wake-ups
// were a quarter of its CPU. Reads and writes of non-blocking sockets never block, so
// this package makes them as raw system calls, and waits for readiness in the runtime's
// poller as net does (deadlines included).
package sysconn

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Conn is a TCP connection whose Read and Write are raw system calls; everything else
// is the TCPConn's.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn

	// One read and one write at a time (as a net.Conn allows concurrently), each with
	// its arguments and results here, so that the callbacks handed to the RawConn are
	// made once, not per call.
	rbuf    []byte
	rn      int
	rerr    syscall.Errno
	readFn  func(fd uintptr) bool
	wbuf    []byte
	wn      int
	werr    syscall.Errno
	writeFn func(fd uintptr) bool
	peekFn  func(fd uintptr) bool
	waitFn  func(fd uintptr) bool
	sendFn  func(fd uintptr) bool
	sent    bool
	peekN   int
	peekBuf [1]byte

	// The deadlines in force, as last set (zero: none, or unknown after a failure), so
	// that a deadline close enough to the one wanted is kept rather than set again: each
	// setting is a timer update in the runtime. Set from any goroutine.
	dmu    sync.Mutex
	rd, wd time.Time
}

// Wrap returns c as a Conn when it is a TCP connection, and c itself otherwise.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	sc := &Conn{TCPConn: tc, rc: rc}
	sc.readFn, sc.writeFn, sc.peekFn, sc.waitFn, sc.sendFn = sc.read, sc.write, sc.peek, sc.waitInput, sc.sendWait
	return sc
}

// Read reads from the socket once it has something to read, as net.Conn's Read.
func (c *Conn) Read(p []byte) (int, error) {
	if raceEnabled {
		return c.TCPConn.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerr
	c.rbuf = nil
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *Conn) read(fd uintptr) bool {
	for {
		r, e := RawRead(int(fd), c.rbuf)
		switch e {
		case 0:
			c.rn = int(r)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.rerr = e
		return true
	}
}

// maxWrite bounds one system call's write, as package net does.
const maxWrite = 1 << 30

// Write writes all of p, waiting for room in the socket's buffer, as net.Conn's Write.
// It sends with MSG_NOSIGNAL: a peer that closed makes it fail with EPIPE, no signal.
func (c *Conn) Write(p []byte) (int, error) {
	if raceEnabled {
		return c.TCPConn.Write(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.wbuf, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeFn)
	n, errno := c.wn, c.werr
	c.wbuf = nil
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, c.opError("write", errno)
	}
	return n, nil
}

func (c *Conn) write(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		b := c.wbuf[c.wn:]
		if len(b) > maxWrite {
			b = b[:maxWrite]
		}
		r, e := RawSend(int(fd), b)
		switch e {
		case 0:
			c.wn += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// SetDeadline sets the read and write deadlines, as net.Conn's.
func (c *Conn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return c.setDeadlines(t, true, true)
}

// SetReadDeadline sets the read deadline, as net.Conn's.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return c.setDeadlines(t, true, false)
}

// SetWriteDeadline sets the write deadline, as net.Conn's.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return c.setDeadlines(t, false, true)
}

// ExtendDeadline makes both deadlines t or later: they stay when both already pass
// within slack after t, else both are set to t+slack. A deadline asked for again and
// again is then set once per slack, and passes at most slack late, never early. It
// returns the deadline in force.
func (c *Conn) ExtendDeadline(t time.Time, slack time.Duration) (time.Time, error) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.rd.Equal(c.wd) && near(c.rd, t, slack) {
		return c.rd, nil
	}
	t = t.Add(slack)
	return t, c.setDeadlines(t, true, true)
}

// ExtendReadDeadline is ExtendDeadline for the read deadline alone.
func (c *Conn) ExtendReadDeadline(t time.Time, slack time.Duration) (time.Time, error) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if near(c.rd, t, slack) {
		return c.rd, nil
	}
	t = t.Add(slack)
	return t, c.setDeadlines(t, true, false)
}

// RenewSlack is the slack the router gives a deadline of d from now that it renews
// often (ExtendDeadline): a tenth of d, at most 100 ms, by which it may pass late.
func RenewSlack(d time.Duration) time.Duration { return min(100*time.Millisecond, d/10) }

// ExtendDeadline is Conn.ExtendDeadline for c when it is a Conn; any other connection
// gets its deadlines set.
func ExtendDeadline(c net.Conn, t time.Time, slack time.Duration) (time.Time, error) {
	if sc, ok := c.(*Conn); ok {
		return sc.ExtendDeadline(t, slack)
	}
	return t, c.SetDeadline(t)
}

// ExtendReadDeadline is Conn.ExtendReadDeadline for c when it is a Conn; any other
// connection gets its read deadline set.
func ExtendReadDeadline(c net.Conn, t time.Time, slack time.Duration) (time.Time, error) {
	if sc, ok := c.(*Conn); ok {
		return sc.ExtendReadDeadline(t, slack)
	}
	return t, c.SetReadDeadline(t)
}

// near says whether the deadline d passes at t or within slack after it.
func near(d, t time.Time, slack time.Duration) bool {
	return !d.IsZero() && !d.Before(t) && !d.After(t.Add(slack))
}

// setDeadlines sets the read and/or write deadline to t. Caller holds dmu.
func (c *Conn) setDeadlines(t time.Time, read, write bool) error {
	var err error
	switch {
	case read && write:
		err = c.TCPConn.SetDeadline(t)
	case read:
		err = c.TCPConn.SetReadDeadline(t)
	default:
		err = c.TCPConn.SetWriteDeadline(t)
	}
	if err != nil {
		t = time.Time{} // unknown: set again next time
	}
	if read {
		c.rd = t
	}
	if write {
		c.wd = t
	}
	return err
}

func (c *Conn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}

// Alive says whether the socket has nothing to read and is still open (the peer has
// neither closed nor reset it nor sent anything), without blocking: how a kept-alive
// connection is checked before it is used again. Not while a Read is in progress.
func (c *Conn) Alive() bool {
	c.rerr = 0
	err := c.rc.Read(c.peekFn)
	return err == nil && c.rerr == syscall.EAGAIN
}

func (c *Conn) peek(fd uintptr) bool {
	_, _, c.rerr = syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return true
}

// Input is what WaitInput found.
type Input int

const (
	Bytes   Input = iota // bytes to read
	Ended                // the peer closed or reset the connection
	Timeout              // the read deadline passed first (or the connection was closed)
)

// WaitInput parks until the socket has something to read (bytes, or its end or an
// error) or the read deadline passes, and reads nothing: a goroutine that waits for
// something else (and is woken by a read deadline set in the past) notices the peer
// leaving meanwhile at no extra cost. Not while a Read is in progress.
func (c *Conn) WaitInput() Input {
	c.rerr, c.peekN = 0, 0
	if err := c.rc.Read(c.waitFn); err != nil {
		return Timeout
	}
	if c.rerr != 0 || c.peekN == 0 {
		return Ended
	}
	return Bytes
}

func (c *Conn) waitInput(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			c.peekN = int(r)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.rerr = e
		return true
	}
}

// WriteAndWait writes p, as Write, then waits until the socket has something to read or
// the read deadline passes, and reads nothing. For a request whose answer can only come
// after it, it spares the read that would find nothing yet: waiting for input in Go's
// poller needs a read that failed first, unless the wait began before the input could
// arrive, which it does here (the write is made from within the wait). Errors are the
// write's; the wait's (a deadline that passed) are left to the next read. Not while
// another Write or a Read is in progress.
func (c *Conn) WriteAndWait(p []byte) (int, error) {
	if raceEnabled {
		return c.TCPConn.Write(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.wbuf, c.wn, c.werr, c.sent = p, 0, 0, false
	_ = c.rc.Read(c.sendFn) // the next read reports a deadline or a closed connection
	n, errno, sent := c.wn, c.werr, c.sent
	c.wbuf = nil
	switch {
	case errno != 0:
		return n, c.opError("write", errno)
	case !sent:
		// The socket's buffer filled up (or the wait could not begin): write the rest
		// as Write does.
		m, err := c.Write(p[n:])
		return n + m, err
	}
	return n, nil
}

func (c *Conn) sendWait(fd uintptr) bool {
	if c.sent {
		return true // woken: there is something to read
	}
	for c.wn < len(c.wbuf) {
		b := c.wbuf[c.wn:]
		if len(b) > maxWrite {
			b = b[:maxWrite]
		}
		r, e := RawSend(int(fd), b)
		switch e {
		case 0:
			c.wn += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return true
		default:
			c.werr = e
			return true
		}
	}
	c.sent = true
	return false // wait for the answer
}

// RawRead reads from the nonblocking socket fd into p, as a raw system call: a call that
// tells the runtime it may block (syscall.Read) wakes the runtime's monitor, which may
// take the caller's processor away and hand it back through another thread.
func RawRead(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), e
}

// RawSend writes p to the nonblocking socket fd, as a raw system call; a peer that
// closed makes it fail with EPIPE, no signal.
func RawSend(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	r, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), syscall.MSG_NOSIGNAL, 0, 0)
	return int(r), e
}
