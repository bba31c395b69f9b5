package loadgen

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A Backend answers pipelined requests in turn on one connection, reads and drops a
// request's body, closes after Connection: close, and refuses a head it cannot frame.
func TestBackendSpeaksHTTP11(t *testing.T) {
	t.Parallel()
	b := startBackend(t)
	m := NewMeasured(4)
	b.Served = m
	exchange := func(raw string, want ...int) {
		t.Helper()
		c, err := net.Dial("tcp", b.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for i, code := range want {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("response %d: %v", i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != code || (code == 200 && string(body) != "ok") {
				t.Fatalf("response %d: %d %q, want %d", i, resp.StatusCode, body, code)
			}
		}
		// Closed: an end of stream, or a reset when the backend closed with bytes of the
		// refused request unread. Not a timeout.
		if n, err := br.Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("after the last response: %d bytes, %v; want the connection closed", n, err)
		}
	}
	exchange("GET / HTTP/1.1\r\nHost: a\r\nx-trace-index: 1\r\nX-Service-Us: 2000\r\n\r\n"+
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"+
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 200, 200, 200)
	if d := time.Duration(m.d[1].Load()); d < 2*time.Millisecond {
		t.Errorf("request 1 was served in %v, want its 2 ms service time", d)
	}
	exchange("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400)
	exchange("GET / HTTP/1.1\r\nHost: a\r\nX-Service-Us: soon\r\n\r\n", 400)
	exchange("GET / HTTP/1.1\r\n"+strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 80), 400)
	// Over the limit, even when the whole head comes in one piece with its end.
	exchange("GET / HTTP/1.1\r\n"+strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 70)+"\r\n", 400)
}

// startBackend starts one Backend, stopped at the test's end.
func startBackend(t *testing.T) *Backend {
	t.Helper()
	bs, err := StartBackends(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { StopBackends(bs) })
	return bs[0]
}
