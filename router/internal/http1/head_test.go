package http1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// readHeadOf reads a head off data with readHead, through a bufio.Reader of size bytes,
// and says where FindHead should find it: start and end, or the error FindHead should
// give (ErrIncomplete where readHead runs out of bytes).
func readHeadOf(data []byte, max, size int) (start, end int, err error) {
	cr := &countingReader{r: bytes.NewReader(data)}
	br := bufio.NewReaderSize(cr, size)
	head, err := readHead(br, max, nil)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return 0, 0, ErrIncomplete
	case err != nil:
		return 0, 0, err
	}
	end = cr.n - br.Buffered()
	return end - len(head), end, nil
}

// sameAsReadHead says how FindHead differs from readHead on data, if at all.
func sameAsReadHead(data []byte, max int) string {
	start, end, err := FindHead(data, max)
	for _, size := range []int{16, 4096} {
		wstart, wend, werr := readHeadOf(data, max, size)
		if err != werr || werr == nil && (start != wstart || end != wend) {
			return "FindHead: " + quote([]any{start, end, errString(err)}) +
				", readHead: " + quote([]any{wstart, wend, errString(werr)})
		}
	}
	return ""
}

func TestFindHead(t *testing.T) {
	t.Parallel()
	head := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range []struct {
		name       string
		buf        string
		max        int
		start, end int
		err        error
	}{
		{"head", head + "body", 100, 0, len(head), nil},
		{"head alone", head, 100, 0, len(head), nil},
		{"LF only", "GET / HTTP/1.1\nHost: a\n\nGET", 100, 0, 24, nil},
		{"mixed line ends", "GET / HTTP/1.1\nHost: a\r\n\n", 100, 0, 25, nil},
		{"blank lines first", "\r\n\n\r\n" + head, 100, 5, 5 + len(head), nil},
		{"at the bound", head, len(head), 0, len(head), nil},
		{"over the bound", head, len(head) - 1, 0, 0, errHeadTooLarge},
		{"blank lines do not count", "\r\n\r\n" + head, len(head), 4, 4 + len(head), nil},
		{"empty", "", 100, 0, 0, ErrIncomplete},
		{"blank lines only", "\r\n\n\r\n", 100, 5, 0, ErrIncomplete},
		{"a CR after blank lines", "\r\n\r", 100, 2, 0, ErrIncomplete},
		{"start line in part", "GET / HT", 100, 0, 0, ErrIncomplete},
		{"no blank line yet", "GET / HTTP/1.1\r\nHost: a\r\n", 100, 0, 0, ErrIncomplete},
		{"CR of the blank line", "GET / HTTP/1.1\r\nHost: a\r\n\r", 100, 0, 0, ErrIncomplete},
		{"incomplete at the bound", "\r\nGET / HTTP/1.1\r\n", 16, 2, 0, ErrIncomplete},
		{"incomplete over the bound", "\r\nGET / HTTP/1.1\r\nX", 16, 2, 0, errHeadTooLarge},
		{"a CR line is not blank", "\r\r\nX: 1\r\n\r\n", 100, 0, 11, nil},
	} {
		start, end, err := FindHead([]byte(tc.buf), tc.max)
		if start != tc.start || end != tc.end || err != tc.err {
			t.Errorf("%s: %d, %d, %v; want %d, %d, %v", tc.name, start, end, err, tc.start, tc.end, tc.err)
		}
		if d := sameAsReadHead([]byte(tc.buf), tc.max); d != "" {
			t.Errorf("%s: %s", tc.name, d)
		}
	}
	if status, _, _, ok := RefusalInfo(errHeadTooLarge); !ok || status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a head too large is refused with %d", status)
	}
}

// TestFindHeadAgreesWithReadHead: on every request of the parser's tests, each prefix
// of them, and bounds around their size, FindHead finds what readHead reads.
func TestFindHeadAgreesWithReadHead(t *testing.T) {
	t.Parallel()
	streams := append([]string{}, validRequests...)
	streams = append(streams, strings.Join(validRequests[:5], ""), "\n\r\n\r\r\n\n", "\r\nGET / HTTP/1.1\r\n\r\r\n\r\n")
	for _, s := range streams {
		head := len(s)
		if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
			head = i + 4
		}
		for _, max := range []int{0, 1, 2, head - 1, head, head + 1, 64 << 10} {
			for n := 0; n <= min(len(s), 300); n++ {
				if d := sameAsReadHead([]byte(s[:n]), max); d != "" {
					t.Fatalf("%q, bound %d: %s", s[:n], max, d)
				}
			}
			if d := sameAsReadHead([]byte(s), max); d != "" {
				t.Fatalf("%q, bound %d: %s", s, max, d)
			}
		}
	}
}

func FuzzFindHead(f *testing.F) {
	for _, s := range validRequests {
		f.Add([]byte(s), uint16(4096), uint8(1))
	}
	f.Add([]byte("\r\n\n\r\nGET / HTTP/1.1\nHost: a\r\n\n"), uint16(20), uint8(3))
	f.Add([]byte("\r\n\r\r\n\r\n"), uint16(1), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, max uint16, step uint8) {
		if d := sameAsReadHead(data, int(max)); d != "" {
			t.Fatal(d)
		}
		if d := scanSameAsFindHead(data, int(max), int(step)); d != "" {
			t.Fatal(d)
		}
	})
}

// scanSameAsFindHead feeds data to a HeadScan step bytes at a time, as reads bring it,
// and says where the scan's answer on a prefix differs from FindHead's, if anywhere.
func scanSameAsFindHead(data []byte, bound, step int) string {
	var s HeadScan
	step = max(step, 1)
	for n := 0; ; n = min(n+step, len(data)) {
		start, end, err := s.Find(data[:n], bound)
		wstart, wend, werr := FindHead(data[:n], bound)
		if start != wstart || end != wend || err != werr {
			return fmt.Sprintf("%q: scan %d %d %v, FindHead %d %d %v", data[:n], start, end, err, wstart, wend, werr)
		}
		if err != ErrIncomplete || n == len(data) {
			return ""
		}
	}
}

// TestHeadScanFindsWhatFindHeadFinds: a head arriving in reads of any size is found
// where FindHead finds it in the whole.
func TestHeadScanFindsWhatFindHeadFinds(t *testing.T) {
	t.Parallel()
	streams := append([]string{}, validRequests...)
	streams = append(streams, "\n\r\n\r\r\n\n", "\r\nGET / HTTP/1.1\r\n\r\r\n\r\n", "GET / HTTP/1.1\r\n"+strings.Repeat("A: b\r\n", 500)+"\r\n")
	for _, s := range streams {
		for _, max := range []int{1, 40, 64 << 10} {
			for step := 1; step <= 9; step++ {
				if d := scanSameAsFindHead([]byte(s), max, step); d != "" {
					t.Fatalf("bound %d, reads of %d: %s", max, step, d)
				}
			}
		}
	}
}

func BenchmarkFindHead(b *testing.B) {
	buf := []byte("GET /some/path?query=1 HTTP/1.1\r\nHost: myapp.localhost\r\nUser-Agent: bench/1.0\r\n" +
		"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nCookie: session=0123456789abcdef\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := FindHead(buf, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParseRequestHead: a head parsed as readRequest does, the Expect rule included.
func TestParseRequestHead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		head   string
		expect bool
		status int
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false, 0},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", true, 0},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n", true, 0},
		{"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nExpect: 100-continue\r\n\r\n", false, 417},
		{"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", false, 417},
		{"POST / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n", false, 417},
		{"POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", false, 0},
		{"POST / HTTP/1.0\r\nExpect: anything\r\n\r\n", false, 0},
		{"GET / HTTP/1.1\r\n\r\n", false, 400},
		{"GET / HTTP/2.0\r\nHost: a\r\n\r\n", false, 505},
	} {
		req, expect, err := ParseRequestHead([]byte(tc.head), nil)
		status, _, _, _ := RefusalInfo(err)
		if status != tc.status || expect != tc.expect || (req == nil) != (tc.status != 0) {
			t.Errorf("%q: %v, %v, %v; want expect %v, status %d", tc.head, req != nil, expect, err, tc.expect, tc.status)
		}
	}
	base := (&http.Request{RemoteAddr: "192.0.2.1:1234"}).WithContext(t.Context())
	for _, s := range validRequests {
		_, end, err := FindHead([]byte(s), testHeadMax)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		start, _, _ := FindHead([]byte(s), testHeadMax)
		req, _, err := ParseRequestHead([]byte(s[start:end]), base)
		want, werr := parseRequest(s[start:end], base)
		if err != nil || werr != nil {
			t.Fatalf("%q: %v, parseRequest: %v", s, err, werr)
		}
		if !reflect.DeepEqual(req, want) {
			t.Errorf("%q: %+v, parseRequest: %+v", s, req, want)
		}
		if req.RemoteAddr != base.RemoteAddr || req.Context() != base.Context() {
			t.Errorf("%q: the base's address and context are lost", s)
		}
	}
}

// TestAppendRefusal: the answer to a refused request, byte for byte, and none to a read
// error.
func TestAppendRefusal(t *testing.T) {
	t.Parallel()
	out, ok := AppendRefusal([]byte("before"), badRequest("malformed Host header"))
	want := "beforeHTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n" +
		"Content-Length: 39\r\n\r\n400 Bad Request: malformed Host header\n"
	if !ok || string(out) != want {
		t.Errorf("got %q, %v; want %q", out, ok, want)
	}
	wrapped := errors.Join(io.ErrUnexpectedEOF, &requestError{status: 505, reason: "unsupported HTTP version"})
	out, ok = AppendRefusal(nil, wrapped)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
	if !ok || err != nil {
		t.Fatalf("%q, %v: %v", out, ok, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 505 || !resp.Close || string(body) != "505 HTTP Version Not Supported: unsupported HTTP version\n" {
		t.Errorf("%q read as %d, close %v, body %q", out, resp.StatusCode, resp.Close, body)
	}
	for _, err := range []error{io.EOF, io.ErrUnexpectedEOF, errors.New("timeout")} {
		if out, ok := AppendRefusal([]byte("x"), err); ok || string(out) != "x" {
			t.Errorf("%v: answered %q", err, out)
		}
		if _, _, _, ok := RefusalInfo(err); ok {
			t.Errorf("%v: a refusal", err)
		}
	}
	status, reason, ambiguous, ok := RefusalInfo(&requestError{status: 400, reason: "both", ambiguous: true})
	if !ok || status != 400 || reason != "both" || !ambiguous {
		t.Errorf("RefusalInfo: %d, %q, %v, %v", status, reason, ambiguous, ok)
	}
}

// TestResponseFraming: how a dyno's response body is framed, as attachBody frames it.
func TestResponseFraming(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		head   string
		method string
		kind   BodyKind
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "GET", LengthBody},
		{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", NoBody},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", ChunkedBody},
		{"HTTP/1.1 200 OK\r\n\r\n", "GET", UntilClose},
		{"HTTP/1.0 200 OK\r\n\r\n", "GET", UntilClose},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", NoBody},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD", NoBody},
		{"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", "GET", NoBody},
		{"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", NoBody},
		{"HTTP/1.1 304 Not Modified\r\n\r\n", "GET", NoBody},
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "GET", NoBody},
		{"HTTP/1.1 599 Custom\r\nContent-Length: 1\r\n\r\n", "POST", LengthBody},
	} {
		resp, err := ParseResponseHead([]byte(tc.head))
		if err != nil {
			t.Fatalf("%q: %v", tc.head, err)
		}
		if kind := ResponseFraming(resp, tc.method); kind != tc.kind {
			t.Errorf("%q to %s: %d, want %d", tc.head, tc.method, kind, tc.kind)
		}
		// ReadResponse attaches the body reader the kind says.
		rresp, err := ReadResponse(bufio.NewReader(strings.NewReader(tc.head)), tc.method)
		if err != nil {
			t.Fatalf("%q: %v", tc.head, err)
		}
		b, _ := rresp.Body.(*bodyReader)
		var kind BodyKind
		switch {
		case b == nil:
			kind = NoBody
		case b.chunked:
			kind = ChunkedBody
		case b.untilClose:
			kind = UntilClose
		default:
			kind = LengthBody
		}
		if kind != tc.kind {
			t.Errorf("%q to %s: ReadResponse attaches a body of kind %d, ResponseFraming says %d", tc.head, tc.method, kind, tc.kind)
		}
	}
	for _, head := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/2.0 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
	} {
		if _, err := ParseResponseHead([]byte(head)); err == nil {
			t.Errorf("%q accepted", head)
		}
	}
}

// TestHeadScanLooksAtEachLineOnce: after a Find that finds no end, the next one begins
// at the line not yet seen whole, so a head arriving a line per read is scanned once.
// (The test changes a line already seen into a blank one, which only a scan from the
// start would notice.)
func TestHeadScanLooksAtEachLineOnce(t *testing.T) {
	t.Parallel()
	var s HeadScan
	buf := []byte("GET / HTTP/1.1\r\nA: b\r\nC: d")
	if _, _, err := s.Find(buf, 1<<20); err != ErrIncomplete {
		t.Fatalf("%v, want ErrIncomplete", err)
	}
	copy(buf[len("GET / HTTP/1.1\r\n"):], "\r\nb") // "A: b\r\n" is now "\r\n" and "b\r\n"
	buf = append(buf, "\r\n"...)
	if _, end, err := FindHead(buf, 1<<20); err != nil || end != len("GET / HTTP/1.1\r\n\r\n") {
		t.Fatalf("FindHead from the start: %d %v, want the blank line to end the head", end, err)
	}
	if _, _, err := s.Find(buf, 1<<20); err != ErrIncomplete {
		t.Fatalf("the scan went back over lines it had seen: %v", err)
	}
	buf = append(buf, "\r\n"...)
	if start, end, err := s.Find(buf, 1<<20); err != nil || start != 0 || end != len(buf) {
		t.Fatalf("the whole head: %d %d %v, want 0 %d", start, end, err, len(buf))
	}
	if s != (HeadScan{}) {
		t.Errorf("after a head is found the next scan begins at the start: %+v", s)
	}
}
