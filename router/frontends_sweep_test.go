package router

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// sweepDyno is a dyno that answers each request by its path, in every way a dyno answers
// (chunked with a trailer, 1xx, 204, 304, cut short, garbage, until it closes, ...),
// and records the request it got for each path.
type sweepDyno struct {
	late     chan struct{} // closed when /slow may answer, after its H12
	lateOnce sync.Once
	mu       sync.Mutex
	heads    map[string]string // path -> the request as the dyno got it, normalized
	ids      map[string]string // path -> the X-Request-Id the dyno got
}

var (
	sweepStart = regexp.MustCompile(`X-Request-Start: t=\d+`)
	sweepPort  = regexp.MustCompile(`X-Forwarded-Port: \d+`)
	sweepID    = regexp.MustCompile(`X-Request-Id: [^|]*`)
)

func newSweepDyno(t *testing.T) *sweepDyno {
	d := &sweepDyno{late: make(chan struct{}), heads: map[string]string{}, ids: map[string]string{}}
	t.Cleanup(d.answerLate)
	return d
}

// answerLate lets /slow answer.
func (d *sweepDyno) answerLate() { d.lateOnce.Do(func() { close(d.late) }) }

// record notes the request for req's path: its line, its headers in order (the values
// that change from run to run replaced), and its body.
func (d *sweepDyno) record(req *http.Request, body []byte) {
	var h strings.Builder
	fmt.Fprintf(&h, "%s %s %s|", req.Method, req.RequestURI, req.Proto)
	for _, k := range slices.Sorted(maps.Keys(req.Header)) {
		for _, v := range req.Header[k] {
			fmt.Fprintf(&h, "%s: %s|", k, v)
		}
	}
	fmt.Fprintf(&h, "host=%s cl=%d te=%v body=%q", req.Host, req.ContentLength, req.TransferEncoding, body)
	head := sweepStart.ReplaceAllString(h.String(), "X-Request-Start: t=T")
	head = sweepPort.ReplaceAllString(head, "X-Forwarded-Port: P")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ids[req.URL.Path] = req.Header.Get("X-Request-Id")
	d.heads[req.URL.Path] = sweepID.ReplaceAllString(head, "X-Request-Id: ID")
}

func (d *sweepDyno) serve(c net.Conn, br *bufio.Reader) {
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		d.record(req, body)
		switch req.URL.Path {
		case "/chunked":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTrailer: X-T, Date\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\nDate: x\r\nSet-Cookie: a=b\r\n\r\n")
		case "/close":
			return
		case "/bad":
			io.WriteString(c, "garbage\r\n\r\n")
			return
		case "/slow":
			<-d.late
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
		case "/204":
			io.WriteString(c, "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n")
		case "/304":
			io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n")
		case "/cut":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
			return
		case "/untilclose":
			io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
			return
		case "/hdrs":
			io.WriteString(c, "HTTP/1.1 201 Created\r\nConnection: X-Foo\r\nX-Foo: bar\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nUpgrade: nope\r\nX-Dyno-Router-Stale: false\r\nX-Dyno-Router-Not-Owner: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Multi: 1\r\nX-Multi: 2\r\nContent-Length: 2\r\n\r\nok")
		case "/connclose":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
			return
		case "/early":
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		case "/status599":
			io.WriteString(c, "HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n")
		case "/big":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("b", 100000))
		default:
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
		}
	}
}

// sweepRequests are the sweep's requests, by name, each sent on a connection of its own.
var sweepRequests = []struct{ name, raw, method string }{
	{"ok", "GET /ok?q=1 HTTP/1.1\r\nHost: sw.localhost\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nX-Request-Id: abcdefghijklmnopqrstuvwxyz-0123456789\r\nX-Forwarded-Proto: https\r\nForwarded: for=x\r\nX_Forwarded_For: y\r\nX-Real-Ip: 1.2.3.4\r\nUser-Agent: zz\r\nAccept: a\r\nAccept: b\r\n\r\n", "GET"},
	{"badid", "GET /badid HTTP/1.1\r\nHost: sw.localhost\r\nX-Request-Id: short\r\n\r\n", "GET"},
	{"head", "HEAD /head HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "HEAD"},
	{"post", "POST /post HTTP/1.1\r\nHost: sw.localhost\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", "POST"},
	{"post0", "POST /post0 HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "POST"},
	{"getbody", "GET /getbody HTTP/1.1\r\nHost: sw.localhost\r\nContent-Length: 3\r\n\r\nabc", "GET"},
	{"chunked", "GET /chunked HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"close", "GET /close HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"bad", "GET /bad HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"slow", "GET /slow HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"204", "GET /204 HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"304", "GET /304 HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"cut", "GET /cut HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"untilclose", "GET /untilclose HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"hdrs", "GET /hdrs HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"connclose", "GET /connclose HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"early", "GET /early HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"status599", "GET /status599 HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"big", "GET /big HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"clientclose", "GET /clientclose HTTP/1.1\r\nHost: sw.localhost\r\nConnection: close\r\n\r\n", "GET"},
	{"options", "OPTIONS * HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "OPTIONS"},
	{"absolute", "GET http://sw.localhost/absolute?x=1 HTTP/1.1\r\nHost: sw.localhost\r\n\r\n", "GET"},
	{"hostcase", "GET /hostcase HTTP/1.1\r\nHost: SW.LocalHost.:80\r\n\r\n", "GET"},
	{"connhdr", "GET /connhdr HTTP/1.1\r\nHost: sw.localhost\r\nConnection: X-Drop, keep-alive\r\nX-Drop: 1\r\nTE: trailers\r\nKeep-Alive: 5\r\n\r\n", "GET"},
	{"down", "GET /down HTTP/1.1\r\nHost: dn.localhost\r\n\r\n", "GET"},
	{"down-head", "HEAD /down-head HTTP/1.1\r\nHost: dn.localhost\r\n\r\n", "HEAD"},
}

// keptLines returns the router lines kept for the dyno logs of apps, without timings.
func keptLines(tr *testRouter, apps ...string) []string {
	var kept []string
	for _, app := range apps {
		lines, _, _ := tr.logRings.ring(app).since(0, 1000)
		for _, l := range lines {
			kept = append(kept, withoutTimings(l.Line))
		}
	}
	return kept
}

// The sweep's requests are answered, forwarded, logged and counted alike on both front ends.
func TestBothFrontEndsAnswerTheSweepAlike(t *testing.T) {
	t.Parallel()
	type seen struct {
		answers, heads, lines []string
		metrics               map[string]float64
	}
	g, l := onBothFrontEnds(t, func(t *testing.T, loop bool) seen {
		d := newSweepDyno(t)
		addr, _ := rawBackend(t, d.serve)
		tr := startFrontEnd(t, loop, func(c *Config) {
			c.RequestTimeout = 500 * time.Millisecond
			c.DownBackoff, c.MaxDownBackoff = time.Hour, time.Hour
		})
		tr.SetApp("sw", []Instance{rawInstance(addr, "web.1")})
		tr.SetApp("dn", []Instance{rawInstance(refusingAddr(t), "web.9")})
		tr.keepLines.Store(true) // as with -logs-listen
		var s seen
		for _, req := range sweepRequests {
			s.answers = append(s.answers, req.name+": "+exchange(t, tr.Addr(), req.raw, req.method))
			if req.name == "slow" {
				d.answerLate() // after its H12: drained
			}
			waitAppIdle(t, tr, "sw")
		}
		waitFor(t, "every request logged and kept", func() bool {
			return len(accessLines(tr)) == len(sweepRequests) && len(keptLines(tr, "sw", "dn")) == len(sweepRequests)
		})
		d.mu.Lock()
		for p, h := range d.heads {
			s.heads = append(s.heads, p+": "+h)
			if l := accessLineFor(tr, p); l != "" && accessField(t, l, "request_id") != d.ids[p] {
				t.Errorf("%s: logged request_id=%s, the dyno got X-Request-Id %s", p, accessField(t, l, "request_id"), d.ids[p])
			}
		}
		d.mu.Unlock()
		slices.Sort(s.heads)
		for _, l := range accessLines(tr) {
			s.lines = append(s.lines, withoutTimings(l))
		}
		if k, a := slices.Sorted(slices.Values(keptLines(tr, "sw", "dn"))), slices.Sorted(slices.Values(s.lines)); !slices.Equal(k, a) {
			t.Errorf("the router lines kept for dyno logs are not the access lines:\nkept:\n  %s\naccess:\n  %s",
				strings.Join(k, "\n  "), strings.Join(a, "\n  "))
		}
		s.metrics = routerMetrics(t, tr.Router)
		return s
	})
	sameLines(t, "answer", g.answers, l.answers)
	sameLines(t, "request the dyno got", g.heads, l.heads)
	sameLines(t, "access line", g.lines, l.lines)
	sameMetrics(t, g.metrics, l.metrics)
}
