package router

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/dynogrid/router/internal/evloop"
	"github.com/dynogrid/dynogrid/router/internal/http1"
)

// loopServer serves plain HTTP/1.1 clients on one event loop (Config.EventLoop): the
// loop reads requests, queues them, writes them to dynos and relays the responses with
// raw system calls, with no goroutine per connection or request. A connection with a
// request the loop does not serve itself (see servable) is handed, with what the loop
// read of it, to the goroutine server (fallback) for the rest of its life.
//
// Everything but Serve and Shutdown runs on the loop's goroutine: the maps and every
// loopClient and loopDyno belong to it.
type loopServer struct {
	r   *Router
	ev  *evloop.Loop
	ln  *net.TCPListener
	fb  *http1.Server
	cfg http1.Config

	clients map[*loopClient]struct{}
	dynos   map[*loopDyno]struct{} // every dyno connection open, idle or not
	idle    map[*dyno]*loopDyno    // a kept-alive connection per dyno
	// shutting: responses close their connections, and the server is drained once
	// no client is left (drained closed).
	shutting bool
	drained  chan struct{}
	// lfd is the loop's descriptor of the listener's socket (-1 once closed).
	lfd           int
	acceptBackoff time.Duration
	acceptRetry   *evloop.Timer // set while accept waits to try again after a failure
	chunkRun      []byte        // a dyno's chunked data on its way to the client (loopDyno.relay)
	ran           chan struct{} // closed when the loop has returned
}

// newLoopServer serves ln on an event loop, with fb (ln's goroutine server, whose Serve
// is never called) for the connections the loop hands over.
func newLoopServer(r *Router, ln *net.TCPListener, fb *http1.Server, cfg http1.Config) (*loopServer, error) {
	// The loop holds its thread and a processor of the runtime of its own while it
	// waits (evloop.NewHolding).
	ev, err := evloop.NewHolding()
	if err != nil {
		return nil, err
	}
	return &loopServer{r: r, ev: ev, ln: ln, fb: fb, cfg: cfg,
		clients: make(map[*loopClient]struct{}), dynos: make(map[*loopDyno]struct{}),
		idle: make(map[*dyno]*loopDyno), drained: make(chan struct{}), ran: make(chan struct{}), lfd: -1}, nil
}

// Serve accepts connections and serves them on the loop, until Shutdown. The loop
// accepts on its own descriptor of the listener's socket (the listener is closed), so
// that a new connection costs no wake-up of another thread.
func (s *loopServer) Serve() error {
	defer close(s.ran)
	fd, err := takeFD(s.ln)
	if err != nil {
		s.ev.Close()
		_ = s.ev.Run()
		return fmt.Errorf("failed to take the listener into the event loop: %w", err)
	}
	s.lfd = fd
	if err := s.ev.Add(fd, loopListener{s}); err != nil {
		unix.Close(fd)
		s.ev.Close()
		_ = s.ev.Run()
		return err
	}
	s.ev.After(sweepEvery, s.sweep)
	return s.ev.Run()
}

// loopListener accepts the connections of the listener's socket.
type loopListener struct{ s *loopServer }

func (l loopListener) Ready(uint32) { l.s.accept() }

// acceptsPerTurn bounds the connections the loop accepts in one turn: a flood of them
// takes turns with the connections it serves.
const acceptsPerTurn = 64

// accept takes the connections waiting, until the socket has none.
func (s *loopServer) accept() {
	if s.acceptRetry != nil {
		return // out of descriptors: the retry's timer tries again
	}
	for n := 0; s.lfd >= 0; n++ {
		if n == acceptsPerTurn {
			s.ev.Post(s.accept) // edge-triggered: no event comes for these
			return
		}
		fd, sa, err := unix.Accept4(s.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
		case unix.EAGAIN:
			s.acceptBackoff = 0
			return
		case unix.EINTR, unix.ECONNABORTED:
			continue
		default:
			// Out of descriptors (EMFILE, ENFILE) or memory: try again in a while; the
			// connections wait in the listen backlog meanwhile.
			s.acceptBackoff = min(max(2*s.acceptBackoff, 5*time.Millisecond), time.Second)
			s.r.log.Warn("failed to accept a connection; retrying", "error", err, "in", s.acceptBackoff)
			s.acceptRetry = s.ev.After(s.acceptBackoff, func() {
				s.acceptRetry = nil
				s.accept()
			})
			return
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		s.adopt(fd, sockaddrString(sa))
	}
}

// sockaddrString is a peer's address as net.Conn's RemoteAddr says it.
func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return (&net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}).String()
	case *unix.SockaddrInet6:
		zone := ""
		if a.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return (&net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port, Zone: zone}).String()
	}
	return ""
}

// takeFD returns a descriptor of its own for c's socket (nonblocking, as Go's is) and
// closes c, so that only the loop waits on the socket.
func takeFD(c interface {
	syscall.Conn
	Close() error
}) (int, error) {
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := rc.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) })
	if cerr != nil {
		return -1, cerr
	}
	if err != nil {
		return -1, os.NewSyscallError("fcntl", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
}

// Shutdown stops accepting, lets each connection finish the request it is in (closing
// those that wait for one) and then stops the loop. When ctx ends first, the rest are
// closed.
func (s *loopServer) Shutdown(ctx context.Context) error {
	fbDone := make(chan error, 1)
	go func() { fbDone <- s.fb.Shutdown(ctx) }()
	// The loop accepts until the kernel holds no connection it has not taken: closing
	// the socket would reset those.
	lfd := make(chan int, 1)
	if s.ev.Post(func() { lfd <- s.lfd }) {
		if fd := <-lfd; fd >= 0 {
			http1.DrainAcceptQueueFD(fd, time.Second)
		}
	}
	s.ev.Post(s.beginShutdown)
	var err error
	select {
	case <-s.drained:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.ev.Post(s.closeAll)
	s.ev.Close()
	<-s.ran
	if ferr := <-fbDone; err == nil {
		err = ferr
	}
	return err
}

// beginShutdown closes the connections that wait for a request; the others close after
// their response.
func (s *loopServer) beginShutdown() {
	s.shutting = true
	if s.lfd >= 0 {
		s.ev.Remove(s.lfd)
		unix.Close(s.lfd)
		s.lfd = -1
	}
	for c := range s.clients {
		c.shutdown()
	}
	s.checkDrained()
}

// checkDrained closes drained once the shutdown has begun and no client is left, nor a
// dyno connection that holds a lease (a response the router gave up on, still coming).
func (s *loopServer) checkDrained() {
	if !s.shutting || len(s.clients) > 0 {
		return
	}
	for dc := range s.dynos {
		if dc.l.d != nil {
			return
		}
	}
	select {
	case <-s.drained:
	default:
		close(s.drained)
	}
}

// closeAll closes every connection the loop holds, at the end of the shutdown.
func (s *loopServer) closeAll() {
	for c := range s.clients {
		c.close()
	}
	for dc := range s.dynos {
		dc.close()
	}
}

// takeIdle returns the kept-alive connection of d when it is still open and quiet, or
// nil.
func (s *loopServer) takeIdle(d *dyno) *loopDyno {
	dc := s.idle[d]
	if dc == nil {
		return nil
	}
	delete(s.idle, d)
	if dc.dead || len(dc.in) > 0 {
		dc.close()
		return nil
	}
	return dc
}

// sweepEvery is how often the loop closes its kept-alive connections to dynos that left
// the routing table.
const sweepEvery = 10 * time.Second

func (s *loopServer) sweep() {
	for d, dc := range s.idle {
		d.app.mu.Lock()
		removed := d.removed
		d.app.mu.Unlock()
		if removed {
			dc.close()
		}
	}
	s.ev.After(sweepEvery, s.sweep)
}

// keep stores dc as d's kept-alive connection (closing the one it replaces).
func (s *loopServer) keep(d *dyno, dc *loopDyno) {
	if old := s.idle[d]; old != nil && old != dc {
		old.close()
	}
	s.idle[d] = dc
}
