package http1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkWriteHeader: typical final response heads, one with a Content-Length, one
// chunked.
func BenchmarkWriteHeader(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    http.Header
	}{
		{"length", http.Header{
			"Content-Type":   {"text/html; charset=utf-8"},
			"Content-Length": {"5120"},
			"Cache-Control":  {"private, max-age=0"},
			"X-Request-Id":   {"3f1c2b9e-8d4a-4c1e-9a57-0b6e2d7f4a11"},
			"Set-Cookie":     {"session=abc123; Path=/; HttpOnly", "theme=dark; Path=/"},
			"Vary":           {"Accept-Encoding"},
		}},
		{"chunked", http.Header{
			"Content-Type": {"application/json"},
			"X-Request-Id": {"3f1c2b9e-8d4a-4c1e-9a57-0b6e2d7f4a11"},
			"Via":          {"1.1 vegur"},
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cc := &clientConn{f: &Server{}, bw: bufio.NewWriterSize(io.Discard, 4096)}
			req := &http.Request{Method: http.MethodGet, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
			b.ReportAllocs()
			for b.Loop() {
				w := Response{cc: cc, req: req, header: bc.h}
				w.WriteHeader(http.StatusOK)
				cc.bw.Flush() // as finish does: the next head starts in an empty buffer
			}
		})
	}
}

// headLines splits a response head into its status line, its header lines, sorted, and
// apart its Date lines.
func headLines(head string) (status string, lines, dates []string) {
	all := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
	for _, l := range all[1:] {
		if strings.HasPrefix(l, "Date: ") {
			dates = append(dates, l)
			continue
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return all[0], lines, dates
}

func TestAppendResponseHead(t *testing.T) {
	t.Parallel()
	http11 := HeadOptions{Method: http.MethodGet, HTTP11: true}
	http10 := HeadOptions{Method: http.MethodGet}
	for _, tc := range []struct {
		name    string
		code    int
		h       http.Header
		o       HeadOptions
		framing Framing
		lines   []string // sorted, Date left out
		date    string   // the handler's
	}{
		{name: "length", code: 200, h: http.Header{"Content-Length": {"5"}, "X-A": {"1"}}, o: http11,
			framing: Framing{Length: 5}, lines: []string{"Content-Length: 5", "X-A: 1"}},
		{name: "chunked", code: 200, h: http.Header{"X-A": {"1"}}, o: http11,
			framing: Framing{Chunked: true, Length: -1}, lines: []string{"Transfer-Encoding: chunked", "X-A: 1"}},
		{name: "until close to HTTP/1.0", code: 200, h: http.Header{}, o: http10,
			framing: Framing{Close: true, Length: -1}, lines: []string{"Connection: close"}},
		{name: "kept alive HTTP/1.0", code: 200, h: http.Header{"Content-Length": {"0"}}, o: http10,
			framing: Framing{Length: 0}, lines: []string{"Connection: keep-alive", "Content-Length: 0"}},
		{name: "HEAD", code: 200, h: http.Header{}, o: HeadOptions{Method: http.MethodHead, HTTP11: true},
			framing: Framing{NoBody: true, Length: -1}},
		{name: "HEAD with a length", code: 200, h: http.Header{"Content-Length": {"9"}}, o: HeadOptions{Method: http.MethodHead, HTTP11: true},
			framing: Framing{NoBody: true, Length: 9}, lines: []string{"Content-Length: 9"}},
		{name: "204 drops its length", code: 204, h: http.Header{"Content-Length": {"5"}}, o: http11,
			framing: Framing{NoBody: true, Length: 5}},
		{name: "304 keeps its length", code: 304, h: http.Header{"Content-Length": {"5"}}, o: http11,
			framing: Framing{NoBody: true, Length: 5}, lines: []string{"Content-Length: 5"}},
		{name: "malformed length", code: 200, h: http.Header{"Content-Length": {"5x"}}, o: http11,
			framing: Framing{Chunked: true, Length: -1}, lines: []string{"Transfer-Encoding: chunked"}},
		{name: "two lengths", code: 200, h: http.Header{"Content-Length": {"5", "5"}}, o: http11,
			framing: Framing{Chunked: true, Length: -1}, lines: []string{"Transfer-Encoding: chunked"}},
		{name: "handler's Connection: close", code: 200, h: http.Header{"Content-Length": {"1"}, "Connection": {"keep-alive, close"}}, o: http11,
			framing: Framing{Close: true, Length: 1}, lines: []string{"Connection: close", "Content-Length: 1"}},
		{name: "closing connection", code: 200, h: http.Header{"Content-Length": {"1"}}, o: HeadOptions{Method: "GET", HTTP11: true, Close: true},
			framing: Framing{Close: true, Length: 1}, lines: []string{"Connection: close", "Content-Length: 1"}},
		{name: "hop-by-hop fields dropped", code: 200, o: http11,
			h:       http.Header{"Content-Length": {"1"}, "Connection": {"x"}, "Keep-Alive": {"timeout=5"}, "Transfer-Encoding": {"gzip"}, "Trailer:X": {"1"}},
			framing: Framing{Length: 1}, lines: []string{"Content-Length: 1"}},
		{name: "declared trailers", code: 200, h: http.Header{"Trailer": {"x-sum, ,Grpc-Status", "x-b"}}, o: http11,
			framing: Framing{Chunked: true, Length: -1, Trailers: []string{"X-Sum", "Grpc-Status", "X-B"}},
			lines:   []string{"Trailer: x-b", "Trailer: x-sum, ,Grpc-Status", "Transfer-Encoding: chunked"}},
		{name: "no trailers with a length", code: 200, h: http.Header{"Trailer": {"X-Sum"}, "Content-Length": {"1"}}, o: http11,
			framing: Framing{Length: 1}, lines: []string{"Content-Length: 1"}},
		{name: "handler's Date", code: 200, h: http.Header{"Date": {"then"}, "Content-Length": {"1"}}, o: http11,
			framing: Framing{Length: 1}, lines: []string{"Content-Length: 1"}, date: "then"},
		{name: "nil header", code: 200, o: http11, framing: Framing{Chunked: true, Length: -1}, lines: []string{"Transfer-Encoding: chunked"}},
	} {
		b, f := AppendResponseHead([]byte("prefix"), tc.code, tc.h, tc.o)
		if !reflect.DeepEqual(f, tc.framing) {
			t.Errorf("%s: framing %+v, want %+v", tc.name, f, tc.framing)
		}
		head, ok := strings.CutPrefix(string(b), "prefix")
		if !ok || !strings.HasSuffix(head, "\r\n\r\n") {
			t.Fatalf("%s: %q", tc.name, b)
		}
		status, lines, dates := headLines(head)
		if want := "HTTP/1.1 " + strconv.Itoa(tc.code) + " " + http.StatusText(tc.code); status != want {
			t.Errorf("%s: status line %q, want %q", tc.name, status, want)
		}
		if !slices.Equal(lines, tc.lines) {
			t.Errorf("%s: lines %q, want %q", tc.name, lines, tc.lines)
		}
		if len(dates) != 1 || tc.date != "" && dates[0] != "Date: "+tc.date {
			t.Errorf("%s: Date lines %q", tc.name, dates)
		}
		if _, ok := tc.h["Content-Length"]; ok != (f.Length >= 0 && tc.code != 204) {
			t.Errorf("%s: Content-Length kept in the header: %v", tc.name, ok)
		}
		if _, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head)), &http.Request{Method: tc.o.Method}); err != nil {
			t.Errorf("%s: Go does not read %q: %v", tc.name, head, err)
		}
	}
	b, _ := AppendResponseHead(nil, 599, nil, http11)
	if !strings.HasPrefix(string(b), "HTTP/1.1 599 status code 599\r\n") {
		t.Errorf("a status without text: %q", b)
	}
}

// TestWriteHeaderWritesAppendResponseHead: a response's head is what AppendResponseHead
// makes, whether it fits the writer's free space, follows bytes already buffered or is
// larger than the buffer.
func TestWriteHeaderWritesAppendResponseHead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		before string
		value  string
	}{
		{"fits", "", "v"},
		{"after buffered bytes", strings.Repeat("b", 4000), strings.Repeat("v", 200)},
		{"larger than the buffer", "b", strings.Repeat("v", 10000)},
	} {
		var out bytes.Buffer
		cc := &clientConn{f: &Server{}, bw: bufio.NewWriterSize(&out, 4096)}
		cc.bw.WriteString(tc.before)
		h := http.Header{"Date": {tc.value}} // one field: one order
		w := &Response{cc: cc, req: &http.Request{Method: "GET", ProtoMajor: 1, ProtoMinor: 1}, header: h}
		w.WriteHeader(http.StatusOK)
		cc.bw.Flush()
		want, f := AppendResponseHead([]byte(tc.before), http.StatusOK, h, HeadOptions{Method: "GET", HTTP11: true})
		if out.String() != string(want) {
			t.Errorf("%s: wrote %q, want %q", tc.name, quote(out.String()), quote(want))
		}
		if !w.chunked || w.noBody || w.length != -1 || w.closeConn || !f.Chunked {
			t.Errorf("%s: response framed as chunked %v, no body %v, length %d, close %v", tc.name, w.chunked, w.noBody, w.length, w.closeConn)
		}
	}
}

// TestFinishWritesTrailers: a chunked response ends with the last chunk and the trailer
// fields the handler declared, then those it set under http.TrailerPrefix.
func TestFinishWritesTrailers(t *testing.T) {
	t.Parallel()
	c, peer := net.Pipe()
	defer c.Close()
	defer peer.Close()
	var out bytes.Buffer
	cc := &clientConn{f: &Server{}, c: c, bw: bufio.NewWriter(&out)}
	w := &Response{cc: cc, req: &http.Request{Method: "GET", ProtoMajor: 1, ProtoMinor: 1}, writeTimeout: time.Minute}
	w.Header().Set("Trailer", "X-Sum")
	w.Header().Set("Date", "now")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "abc")
	w.Header().Set("X-Sum", "1")
	w.Header()[http.TrailerPrefix+"x-late"] = []string{"2\r\n3"}
	w.finish()
	want := "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nDate: now\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Late: 2  3\r\n\r\n"
	if got := out.String(); got != want && got != strings.Replace(want, "Trailer: X-Sum\r\nDate: now", "Date: now\r\nTrailer: X-Sum", 1) {
		t.Errorf("wrote %q, want %q", got, want)
	}
	if string(AppendLastChunk([]byte("x"), http.Header{"X-Sum": {"1", "2"}, "Bad Name": {"v"}})) != "x0\r\nX-Sum: 1\r\nX-Sum: 2\r\n\r\n" {
		t.Errorf("AppendLastChunk: %q", AppendLastChunk(nil, http.Header{"X-Sum": {"1", "2"}}))
	}
	if string(AppendLastChunk(nil, nil)) != "0\r\n\r\n" {
		t.Errorf("AppendLastChunk with no trailer: %q", AppendLastChunk(nil, nil))
	}
}

// TestAppendResponseHeadAllocatesNothing: with room in dst and no Trailer header, a
// head costs no allocation.
func TestAppendResponseHeadAllocatesNothing(t *testing.T) {
	h := http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"12"}, "X-Request-Id": {"abc"}}
	buf := make([]byte, 0, 4096)
	o := HeadOptions{Method: "GET", HTTP11: true}
	if n := testing.AllocsPerRun(100, func() { AppendResponseHead(buf, 200, h, o) }); n != 0 {
		t.Errorf("%v allocations per head", n)
	}
	if n := testing.AllocsPerRun(100, func() { AppendResponseHead(buf, 599, nil, o) }); n != 0 {
		t.Errorf("%v allocations per chunked head", n)
	}
}
