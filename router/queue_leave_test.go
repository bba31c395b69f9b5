package router

import (
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestClientLeavingUnwatchedWhileQueuedNeverReachesADyno: a queued request whose
// connection cannot be watched for the client leaving (the client sent more bytes after
// it, or its body is yet to stream) is still dropped (H27) when the client has left by
// the time a dyno frees up: the dyno never gets it. A flood of requests whose clients
// leave at once would otherwise cost the dynos a whole service time each.
func TestClientLeavingUnwatchedWhileQueuedNeverReachesADyno(t *testing.T) {
	t.Parallel()
	for name, raw := range map[string]string{
		"a pipelined byte":    "GET /gone HTTP/1.1\r\nHost: uw.localhost\r\n\r\nG",
		"a pipelined request": "GET /gone HTTP/1.1\r\nHost: uw.localhost\r\n\r\nGET /gone2 HTTP/1.1\r\nHost: uw.localhost\r\n\r\n",
		"a body that streams": "POST /gone HTTP/1.1\r\nHost: uw.localhost\r\nContent-Length: 200000\r\n\r\n" + strings.Repeat("x", 70000),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, order, release := blockingBackend(t)
			tr := startRouter(t, nil)
			tr.SetApp("uw", []Instance{b.instance("web.1")})
			done := make(chan struct{})
			go func() { defer close(done); tr.do(t, "GET", "uw.localhost", "/held", nil, nil) }()
			<-order
			c, _ := clientConnTo(t, tr.Addr())
			io.WriteString(c, raw)
			waitFor(t, "queued", func() bool { return tr.waiting("uw") == 1 })
			// The client leaves: its end of the connection closes, and the router's
			// socket has the close (ours waits in FIN_WAIT2 once it is acknowledged, or
			// is closed once the router closed its side too).
			c.(*net.TCPConn).CloseWrite()
			waitFor(t, "the router to have the client's close", func() bool {
				s := tcpState(t, c)
				return s == unix.BPF_TCP_FIN_WAIT2 || s == unix.BPF_TCP_CLOSE
			})
			var free sync.Once
			t.Cleanup(func() { free.Do(func() { close(release) }) })
			free.Do(func() { close(release) })
			<-done
			waitFor(t, "H27 log", func() bool { return tr.logHas("code=H27", `path="/gone"`) })
			waitFor(t, "the queue empty", func() bool { return tr.waiting("uw") == 0 })
			select {
			case p := <-order:
				t.Fatalf("the dyno got %s, of a client that had left", p)
			default:
			}
			if n := b.served.Load(); n != 1 {
				t.Fatalf("dyno served %d requests; the abandoned one must never reach it", n)
			}
			// The dyno is free for the next client at once.
			if resp, _ := tr.do(t, "GET", "uw.localhost", "/next", nil, nil); resp.StatusCode != 200 {
				t.Fatalf("next request: %d", resp.StatusCode)
			}
			if p := <-order; p != "/next" {
				t.Fatalf("the dyno got %s, want /next", p)
			}
		})
	}
}

// tcpState is the TCP state of our end of c (unix.BPF_TCP_*).
func tcpState(t *testing.T, c net.Conn) uint8 {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var state uint8
	rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			state = info.State
		}
	})
	return state
}
