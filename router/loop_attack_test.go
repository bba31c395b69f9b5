package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Attacks on the event loop's reading of its sockets and its shutdown, each run against
// the goroutine server too: both must behave alike.

// answerAndClose is a dyno that answers each connection's request with reply and closes
// its side at once, so that the reply and the close reach the router together.
func answerAndClose(t *testing.T, reply string) string {
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond) // the request's own packets are gone by then
		io.WriteString(c, reply)
		c.(*net.TCPConn).CloseWrite()
		time.Sleep(100 * time.Millisecond) // no reset: the router reads to the end first
	})
	return addr
}

// A dyno that writes a response framed by its close and closes at once (data and FIN
// in one event): the response ends at once, not after the request timeout with an H18.
func TestResponseFramedByTheDynosCloseEndsAtOnce(t *testing.T) {
	for _, loop := range []bool{false, true} {
		t.Run(fmt.Sprint("loop=", loop), func(t *testing.T) {
			t.Parallel()
			addr := answerAndClose(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nthe whole body")
			tr := startRouter(t, func(c *Config) { c.EventLoop = loop; c.RequestTimeout = 2 * time.Second })
			tr.SetApp("uc", []Instance{rawInstance(addr, "web.1")})
			for i := 0; i < 5; i++ {
				start := time.Now()
				c, br := clientConnTo(t, tr.Addr())
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: uc.localhost\r\n\r\n")
				resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				if d := time.Since(start); err != nil || d > time.Second {
					t.Errorf("try %d: %q %v after %s", i, body, err, d)
				}
				c.Close()
			}
			if tr.logHas("H18") {
				t.Errorf("H18 logged")
			}
		})
	}
}

// Pipelined requests followed at once by the client's half-close (nc -N, a script) are
// all answered.
func TestPipelinedRequestsBeforeAHalfCloseAreAnswered(t *testing.T) {
	for _, loop := range []bool{false, true} {
		t.Run(fmt.Sprint("loop=", loop), func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
			tr := startRouter(t, func(c *Config) { c.EventLoop = loop })
			tr.SetApp("ph", []Instance{b.instance("web.1")})
			c, br := clientConnTo(t, tr.Addr())
			io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: ph.localhost\r\n\r\nGET /2 HTTP/1.1\r\nHost: ph.localhost\r\n\r\nGET /3 HTTP/1.1\r\nHost: ph.localhost\r\n\r\n")
			c.(*net.TCPConn).CloseWrite()
			n := 0
			for {
				resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
				if err != nil {
					break
				}
				io.ReadAll(resp.Body)
				n++
			}
			if n != 3 {
				t.Errorf("answered %d of 3", n)
			}
		})
	}
}

// A dyno that sends part of a head and closes at once (one event for data and FIN):
// H13 at once, as the goroutine server, not H12 after the timeout.
func TestDynoClosingMidHeadIsH13AtOnce(t *testing.T) {
	for _, loop := range []bool{false, true} {
		t.Run(fmt.Sprint("loop=", loop), func(t *testing.T) {
			t.Parallel()
			addr := answerAndClose(t, "HTTP/1.1 200 OK\r\nContent-Le")
			tr := startRouter(t, func(c *Config) { c.EventLoop = loop; c.RequestTimeout = 2 * time.Second })
			tr.SetApp("pc", []Instance{rawInstance(addr, "web.1")})
			for i := 0; i < 5; i++ {
				start := time.Now()
				resp, _ := tr.do(t, "GET", "pc.localhost", "/", nil, nil)
				if d := time.Since(start); resp.StatusCode != 503 || d > time.Second {
					t.Errorf("try %d: %d after %s", i, resp.StatusCode, d)
				}
			}
			if tr.logHas("H12") {
				t.Errorf("H12 logged")
			}
		})
	}
}

// Shutdown: a late H12 response is given the shutdown time (docs: "upgraded connections
// and late H12 responses are given the same time, then closed").
func TestShutdownWaitsForALateResponseAfterH12(t *testing.T) {
	for _, loop := range []bool{false, true} {
		t.Run(fmt.Sprint("loop=", loop), func(t *testing.T) {
			t.Parallel()
			cut := make(chan bool, 1)
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(1500 * time.Millisecond):
					cut <- false
				case <-r.Context().Done():
					cut <- true
				}
				io.WriteString(w, "late")
			})
			ln := listen(t)
			r, err := New(Config{Listener: ln, ShutdownTimeout: 5 * time.Second, RequestTimeout: 300 * time.Millisecond, Logger: testLogger(t), EventLoop: loop})
			if err != nil {
				t.Fatal(err)
			}
			r.SetApp("h12", []Instance{b.instance("web.1")})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			<-r.Ready()
			c, br := clientConnTo(t, r.Addr())
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: h12.localhost\r\n\r\n")
			if resp, _ := readResp(t, br, "GET"); resp.StatusCode != 503 {
				t.Fatalf("%d", resp.StatusCode)
			}
			c.Close()
			cancel()
			if <-cut {
				t.Errorf("the dyno's connection was closed under its late response at shutdown")
			}
			<-done
		})
	}
}

// Both servers log an H18 with the time the dyno had the request, say why a 101 nobody
// asked for is H17, and never let a dyno set the router's stale header.
func TestBothServersLogAndHeadTheSame(t *testing.T) {
	for _, loop := range []bool{false, true} {
		t.Run(fmt.Sprint("loop=", loop), func(t *testing.T) {
			t.Parallel()
			addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					switch req.URL.Path {
					case "/silent":
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
						time.Sleep(2 * time.Second) // silent mid-body
						return
					case "/101":
						io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
						return
					default:
						io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Dyno-Router-Stale: false\r\nContent-Length: 2\r\n\r\nok")
					}
				}
			})
			tr := startRouter(t, func(c *Config) { c.EventLoop = loop; c.RequestTimeout = 300 * time.Millisecond })
			tr.SetApp("same", []Instance{rawInstance(addr, "web.1")})
			if resp, _ := tr.do(t, "GET", "same.localhost", "/plain", nil, nil); resp.Header.Get(StaleHeader) != "" {
				t.Errorf("the dyno's %s reached the client: %q", StaleHeader, resp.Header.Get(StaleHeader))
			}
			tr.setStale(true, nil)
			if resp, _ := tr.do(t, "GET", "same.localhost", "/plain", nil, nil); resp.Header.Get(StaleHeader) != "true" {
				t.Errorf("stale table: %s %q, want true", StaleHeader, resp.Header.Get(StaleHeader))
			}
			tr.setStale(false, nil)
			tr.do(t, "GET", "same.localhost", "/101", nil, nil)
			waitFor(t, "the 101 logged", func() bool {
				return tr.logHas("code=H17", `desc="Dyno switched protocols unasked"`, `path="/101"`)
			})
			c, br := clientConnTo(t, tr.Addr())
			io.WriteString(c, "GET /silent HTTP/1.1\r\nHost: same.localhost\r\n\r\n")
			if resp, err := http.ReadResponse(br, &http.Request{Method: "GET"}); err == nil {
				io.ReadAll(resp.Body)
			}
			waitFor(t, "the H18 logged", func() bool { return tr.logHas("code=H18", `path="/silent"`) })
			if tr.logHas("code=H18", `path="/silent"`, "service=0ms") {
				t.Errorf("H18 logged with service=0ms; the dyno had the request for the timeout")
			}
		})
	}
}
