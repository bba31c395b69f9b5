package router

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A request whose small body arrives late is stamped and timed from its head, on both front ends.
func TestBothFrontEndsStampARequestWithASlowBodyFromItsHead(t *testing.T) {
	onBothFrontEnds(t, func(t *testing.T, loop bool) struct{} {
		starts := make(chan string, 1)
		b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			starts <- r.Header.Get("X-Request-Start")
			io.WriteString(w, "ok")
		})
		tr := startFrontEnd(t, loop, nil)
		tr.SetApp("rs", []Instance{b.instance("web.1")})
		c, br := clientConnTo(t, tr.Addr())
		headSent := time.Now()
		io.WriteString(c, "POST /rs HTTP/1.1\r\nHost: rs.localhost\r\nContent-Length: 5\r\n\r\n")
		time.Sleep(300 * time.Millisecond) // the body comes late
		bodySent := time.Now()
		io.WriteString(c, "hello")
		if resp, _ := readResp(t, br, "POST"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		v := <-starts
		us, err := strconv.ParseInt(strings.TrimPrefix(v, "t="), 10, 64)
		if err != nil {
			t.Fatalf("X-Request-Start %q", v)
		}
		stamp := time.UnixMicro(us)
		if us < headSent.UnixMicro() || !stamp.Before(bodySent) {
			t.Errorf("X-Request-Start is %s after the head was sent; the body was sent %s after it",
				stamp.Sub(headSent), bodySent.Sub(headSent))
		}
		var dispatch float64
		fams, err := tr.metrics.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == "dyno_router_dispatch_seconds" {
				for _, m := range f.GetMetric() {
					dispatch += m.GetHistogram().GetSampleSum()
				}
			}
		}
		// Dispatched once the body was in: at least as long after the stamp as the body
		// was sent (less a microsecond of the stamp's rounding).
		if least := bodySent.Sub(stamp) - time.Microsecond; dispatch < least.Seconds() {
			t.Errorf("dyno_router_dispatch_seconds sums %.3fs, want at least %.3fs", dispatch, least.Seconds())
		}
		return struct{}{}
	})
}

// A client that reads a large response steadily but slowly gets all of it, on both front ends.
func TestBothFrontEndsServeASteadySlowReaderWhole(t *testing.T) {
	const size = 640 << 10
	type seen struct {
		read int
		line string
	}
	g, l := onBothFrontEnds(t, func(t *testing.T, loop bool) seen {
		b := sizedBackend(t, size)
		// On loopback the kernel grows a slow client's send buffer to megabytes; on a
		// real network it holds about the bandwidth-delay product: the router's is kept at
		// 64 KiB, and the client has a small receive buffer, as on a slow link.
		tr := startFrontEnd(t, loop, func(c *Config) {
			c.Listener = listenSendBuffer(t, 64<<10)
			c.RequestTimeout = 900 * time.Millisecond
		})
		tr.SetApp("sr", []Instance{b.instance("web.1")})
		c := dialReceiveBuffer(t, tr.Addr(), 4<<10, 536)
		io.WriteString(c, "GET /big HTTP/1.1\r\nHost: sr.localhost\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4<<10), &http.Request{Method: "GET"})
		if err != nil {
			t.Fatal(err)
		}
		// 4 KiB every 20 ms, about 200 KB/s: 64 KiB go in a third of a second, well within
		// half the request timeout.
		n, buf := 0, make([]byte, 4<<10)
		for n < size {
			m, err := io.ReadFull(resp.Body, buf[:min(len(buf), size-n)])
			n += m
			if err != nil {
				t.Errorf("the client read %d of %d bytes: %v", n, size, err)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		waitFor(t, "the request logged", func() bool { return accessLineFor(tr, "/big") != "" })
		line := accessLineFor(tr, "/big")
		if accessField(t, line, "at") != "info" || accessField(t, line, "bytes") != strconv.Itoa(size) {
			t.Errorf("logged %s", line)
		}
		return seen{n, withoutTimings(line)}
	})
	if g != l {
		t.Errorf("the slow reader was served differently:\n  goroutine server: %+v\n  event loop:       %+v", g, l)
	}
}

// A client that stops reading is cut off (H27) with about as many bytes logged, on both front ends.
func TestBothFrontEndsLogTheBytesSentToAClientThatStopsReading(t *testing.T) {
	t.Parallel()
	const size = 16 << 20
	type seen struct {
		line  string
		bytes int
	}
	g, l := onBothFrontEnds(t, func(t *testing.T, loop bool) seen {
		b := sizedBackend(t, size)
		tr := startFrontEnd(t, loop, func(c *Config) { c.RequestTimeout = 300 * time.Millisecond })
		tr.SetApp("nr", []Instance{b.instance("web.1")})
		c := dialReceiveBuffer(t, tr.Addr(), 64<<10, 0)
		io.WriteString(c, "GET /stall HTTP/1.1\r\nHost: nr.localhost\r\n\r\n")
		waitFor(t, "the request logged", func() bool { return accessLineFor(tr, "/stall") != "" })
		line := accessLineFor(tr, "/stall")
		if code := accessField(t, line, "code"); code != "H27" {
			t.Errorf("logged code=%q, want H27: %s", code, line)
		}
		n, err := strconv.Atoi(accessField(t, line, "bytes"))
		if err != nil || n <= 0 || n >= size {
			t.Errorf("logged bytes=%s of a %d-byte response, most of it never sent", accessField(t, line, "bytes"), size)
		}
		return seen{strings.Replace(withoutTimings(line), "bytes="+strconv.Itoa(n), "bytes=N", 1), n}
	})
	if g.line != l.line {
		t.Errorf("access line differs:\n  goroutine server: %s\n  event loop:       %s", g.line, l.line)
	}
	// What the kernel took is what went to the client: it may differ by as much as the
	// client's receive buffer holds (the kernel doubles the 64 KiB asked).
	if d := l.bytes - g.bytes; d > 128<<10 || d < -(128<<10) {
		t.Errorf("logged bytes= differs by %d: goroutine server %d, event loop %d", d, g.bytes, l.bytes)
	}
}
