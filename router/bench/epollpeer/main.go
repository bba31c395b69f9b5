// Command epollpeer is a benchmark peer, not a router: the least an HTTP/1.1 proxy with
// one FIFO queue in front of single-request backends costs per request when it is
// written in Go on an epoll loop of its own (one thread, raw system calls, no goroutine
// per connection). BenchmarkCPU runs it beside dyno-router and HAProxy, so that the
// figures say how much of the router's cost is Go's goroutines and poller, and how much
// is what the router does per request.
//
// It does only what the benchmark's traffic needs: kept-alive clients sending requests
// without bodies, backends answering with a Content-Length. It adds the five headers the
// router adds (X-Request-Id, X-Request-Start, X-Forwarded-For, -Proto and -Port), and
// checks nothing else: no header validation, timeouts, limits, metrics or logs.
//
// -wait says how its loop waits for events: raw (the default), in epoll_pwait as a raw
// system call, holding its thread and its Go processor meanwhile; or go, on package
// evloop, whose epoll set is parked in Go's poller so that the loop holds no thread
// while it waits (what a loop sharing its process with other goroutines needs).
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/dynogrid/dynogrid/router/internal/evloop"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	backends := flag.String("backends", "", "comma-separated backend addresses")
	wait := flag.String("wait", "raw", "how the loop waits: raw (epoll_pwait on a locked thread) or go (package evloop: the epoll set parked in Go's poller)")
	flag.Parse()
	var err error
	switch *wait {
	case "raw":
		err = run(*listen, strings.Split(*backends, ","))
	case "go":
		err = runOnEvloop(*listen, strings.Split(*backends, ","))
	default:
		err = fmt.Errorf("-wait %q: want raw or go", *wait)
	}
	fmt.Fprintln(os.Stderr, "epollpeer:", err)
	os.Exit(1)
}

// conn is a client connection or a backend connection.
type conn struct {
	fd      int
	in, out []byte
	eof     bool
	closed  bool

	// A client's: its request is queued or at a backend, and the request as it goes out.
	busy bool
	wire []byte

	// A backend's: its address, and the client whose request it serves (nil: idle).
	addr  *syscall.SockaddrInet4
	serve *conn
}

type proxy struct {
	ep    int
	loop  *evloop.Loop // when it runs on package evloop (ep unused)
	ln    int
	conns []*conn // by descriptor
	idle  []*conn // backends with no request
	queue []*conn // clients waiting for a backend, oldest first
	buf   []byte
}

// newProxy makes the proxy's listening socket and its idle backends.
func newProxy(listen string, backends []string) (*proxy, error) {
	p := &proxy{buf: make([]byte, 64<<10)}
	for _, a := range backends {
		sa, err := sockaddr(a)
		if err != nil {
			return nil, err
		}
		p.idle = append(p.idle, &conn{fd: -1, addr: sa})
	}
	sa, err := sockaddr(listen)
	if err != nil {
		return nil, err
	}
	if p.ln, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0); err != nil {
		return nil, err
	}
	_ = syscall.SetsockoptInt(p.ln, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.Bind(p.ln, sa); err != nil {
		return nil, err
	}
	if err := syscall.Listen(p.ln, 4096); err != nil {
		return nil, err
	}
	return p, nil
}

// run serves until a system call of the loop fails, and returns that failure.
func run(listen string, backends []string) error {
	runtime.LockOSThread()
	p, err := newProxy(listen, backends)
	if err != nil {
		return err
	}
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	p.ep = ep
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, p.ln, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.ln)}); err != nil {
		return err
	}
	events := make([]syscall.EpollEvent, 256)
	for {
		n, errno := epollWait(ep, events)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return os.NewSyscallError("epoll_pwait", errno)
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			switch {
			case fd == p.ln:
				p.accept()
			case fd < len(p.conns) && p.conns[fd] != nil:
				p.event(p.conns[fd], ev.Events)
			}
		}
	}
}

// runOnEvloop is run with the loop of package evloop, which parks in Go's poller
// rather than holding a thread in epoll_pwait.
func runOnEvloop(listen string, backends []string) error {
	p, err := newProxy(listen, backends)
	if err != nil {
		return err
	}
	l, err := evloop.New()
	if err != nil {
		return err
	}
	p.loop = l
	if err := l.Add(p.ln, acceptor{p}); err != nil {
		return err
	}
	return l.Run()
}

type handler struct {
	p *proxy
	c *conn
}

func (h handler) Ready(ev uint32) { h.p.event(h.c, ev) }

type acceptor struct{ p *proxy }

func (a acceptor) Ready(uint32) { a.p.accept() }

// epollWait waits for events as a raw system call, which the runtime does not see: it
// does not wake its monitor thread (sysmon) to take this thread's processor away while
// the loop waits, as syscall.EpollWait does at every wait; those wake-ups cost this
// process a third of its CPU at the benchmark's queueing load. The runtime still
// preempts the loop when it needs to (for a collection) with a signal, which ends the
// wait with EINTR.
func epollWait(ep int, events []syscall.EpollEvent) (int, syscall.Errno) {
	forever := -1
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)),
		uintptr(forever), 0, 0)
	return int(r), e
}

func sockaddr(a string) (*syscall.SockaddrInet4, error) {
	ta, err := net.ResolveTCPAddr("tcp4", a)
	if err != nil {
		return nil, err
	}
	sa := &syscall.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	return sa, nil
}

const edge = syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | syscall.EPOLLET&0xffffffff

func (p *proxy) add(c *conn) {
	for len(p.conns) <= c.fd {
		p.conns = append(p.conns, nil)
	}
	p.conns[c.fd] = c
	_ = syscall.SetsockoptInt(c.fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if p.loop != nil {
		_ = p.loop.Add(c.fd, handler{p, c})
		return
	}
	_ = syscall.EpollCtl(p.ep, syscall.EPOLL_CTL_ADD, c.fd, &syscall.EpollEvent{Events: edge, Fd: int32(c.fd)})
}

func (p *proxy) close(c *conn) {
	if c.closed || c.fd < 0 {
		return
	}
	c.closed = true
	p.conns[c.fd] = nil
	if p.loop != nil {
		p.loop.Remove(c.fd)
	}
	_ = syscall.Close(c.fd)
}

func (p *proxy) accept() {
	for {
		fd, _, err := syscall.Accept4(p.ln, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		p.add(&conn{fd: fd})
	}
}

func (p *proxy) event(c *conn, ev uint32) {
	if ev&syscall.EPOLLOUT != 0 && len(c.out) > 0 {
		p.flush(c)
	}
	if ev&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) == 0 || c.closed {
		return
	}
	p.fill(c)
	if c.addr != nil {
		p.answer(c)
	} else {
		p.next(c)
	}
}

// fill reads what the socket holds.
func (p *proxy) fill(c *conn) {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(c.fd), uintptr(unsafe.Pointer(&p.buf[0])), uintptr(len(p.buf)))
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return
		case e != 0 || r == 0:
			c.eof = true
			return
		}
		c.in = append(c.in, p.buf[:r]...)
		if int(r) < len(p.buf) {
			return
		}
	}
}

// flush writes what c has to send, as far as the socket takes it.
func (p *proxy) flush(c *conn) {
	for len(c.out) > 0 {
		r, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(&c.out[0])), uintptr(len(c.out)), syscall.MSG_NOSIGNAL, 0, 0)
		switch {
		case e == syscall.EINTR:
		case e == syscall.EAGAIN:
			return
		case e != 0:
			p.close(c)
			return
		default:
			c.out = c.out[r:]
		}
	}
	c.out = c.out[:0]
}

var endOfHead = []byte("\r\n\r\n")

// next starts the client's next request, unless one is under way.
func (p *proxy) next(c *conn) {
	if c.busy || c.closed {
		return
	}
	end := bytes.Index(c.in, endOfHead)
	if end < 0 {
		if c.eof {
			p.close(c)
		}
		return
	}
	c.wire = outbound(c.wire[:0], c.in[:end+2])
	c.in = c.in[end+4:]
	c.busy = true
	if n := len(p.idle); n > 0 {
		b := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.send(b, c)
		return
	}
	p.queue = append(p.queue, c)
}

// outbound is the request head as it goes to a backend: the client's, without
// Connection, and with the router's headers.
func outbound(w, head []byte) []byte {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	w = append(append(w, line...), "\r\n"...)
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if name, _, _ := bytes.Cut(h, []byte(":")); bytes.EqualFold(name, []byte("Connection")) {
			continue
		}
		w = append(append(w, h...), "\r\n"...)
	}
	var id [16]byte
	binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(id[8:], rand.Uint64())
	w = append(w, "X-Request-Id: "...)
	w = hex.AppendEncode(w, id[:])
	w = append(w, "\r\nX-Request-Start: t="...)
	w = strconv.AppendInt(w, time.Now().UnixMicro(), 10)
	return append(w, "\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 80\r\n\r\n"...)
}

// send gives client c's request to backend b, connecting first when b has no connection.
func (p *proxy) send(b, c *conn) {
	b.serve = c
	b.out = append(b.out[:0], c.wire...)
	if b.fd < 0 || b.closed {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			p.fail(b)
			return
		}
		b.fd, b.closed, b.eof, b.in = fd, false, false, b.in[:0]
		p.add(b)
		if err := syscall.Connect(fd, b.addr); err != nil && err != syscall.EINPROGRESS {
			p.fail(b)
		}
		return // sent once connected (EPOLLOUT)
	}
	p.flush(b)
}

// answer relays backend b's response once it is whole, and gives b the next request.
func (p *proxy) answer(b *conn) {
	end := bytes.Index(b.in, endOfHead)
	if b.serve == nil || end < 0 {
		if b.eof {
			p.fail(b)
		}
		return
	}
	n, ok := contentLength(b.in[:end+2])
	total := end + 4 + n
	if !ok || len(b.in) < total {
		if !ok || b.eof {
			p.fail(b)
		}
		return
	}
	c := b.serve
	if !c.closed {
		c.out = append(c.out, b.in[:total]...)
	}
	b.in = append(b.in[:0], b.in[total:]...)
	p.free(b) // the next request goes out before this response
	if !c.closed {
		p.flush(c)
		c.busy = false
		p.next(c)
	}
}

func contentLength(head []byte) (int, bool) {
	const name = "\r\nContent-Length: "
	i := bytes.Index(head, []byte(name))
	if i < 0 {
		return 0, false
	}
	v := head[i+len(name):]
	v = v[:bytes.IndexByte(v, '\r')]
	n, err := strconv.Atoi(string(v))
	return n, err == nil && n >= 0
}

// fail answers the request at b with 502 and drops b's connection.
func (p *proxy) fail(b *conn) {
	if c := b.serve; c != nil && !c.closed {
		c.out = append(c.out, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"...)
		p.flush(c)
		c.busy = false
		defer p.next(c)
	}
	p.close(b)
	p.free(b)
}

// free gives backend b the oldest waiting request, or makes it idle.
func (p *proxy) free(b *conn) {
	b.serve = nil
	for len(p.queue) > 0 {
		c := p.queue[0]
		p.queue = p.queue[1:]
		if !c.closed {
			p.send(b, c)
			return
		}
	}
	p.idle = append(p.idle, b)
}
