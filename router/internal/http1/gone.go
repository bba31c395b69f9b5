package http1

import (
	"crypto/tls"
	"syscall"

	"golang.org/x/sys/unix"
)

// ClientGone says whether the client has closed or reset its connection, also when it
// sent more bytes first (a pipelined request, or a body nobody has read yet), which a
// read would not reach: it asks the kernel for the socket's TCP state, one system call.
// For a request that waited in a queue unwatched (Park could not watch it), before a
// dyno is given to it.
func (w *Response) ClientGone() bool { return w.cc.gone() }

func (cc *clientConn) gone() bool {
	if cc.ctx.Err() != nil {
		return true
	}
	c := cc.c
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true // closed
	}
	gone := false
	if err := rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		// The peer's FIN moves the socket to CLOSE_WAIT, its reset to CLOSE.
		gone = err == nil && (info.State == unix.BPF_TCP_CLOSE_WAIT || info.State == unix.BPF_TCP_CLOSE)
	}); err != nil {
		return true // closed
	}
	return gone
}
