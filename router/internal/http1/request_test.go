package http1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The client parser is checked against Go's own (http.ReadRequest): on valid requests
// both must read the same message, and whatever the router accepts Go must accept and
// frame the same way, so that no byte stream means one request to the router and
// another to a server behind or in front of it.

// pieceReader returns its data in pieces of random size, as a network might.
type pieceReader struct {
	data []byte
	rng  *rand.Rand
	max  int
}

func (r *pieceReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := 1 + r.rng.Intn(r.max)
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// testHeadMax is the head limit the parser tests use.
const testHeadMax = 64 << 10

// parsedRequest is one request as read off a connection, with its body.
type parsedRequest struct {
	req  *http.Request
	body []byte
}

// readOurs reads one request as the router does: head, parse, then the whole body.
func readOurs(br *bufio.Reader) (*parsedRequest, error) {
	head, err := readHead(br, testHeadMax, nil)
	if err != nil {
		return nil, err
	}
	req, rerr := parseRequest(string(head), nil)
	if rerr != nil {
		return nil, rerr
	}
	p := &parsedRequest{req: req}
	if req.ContentLength != 0 {
		b := newBodyReader(br, req.ContentLength, testHeadMax)
		p.body, err = io.ReadAll(b)
		if err != nil {
			return p, fmt.Errorf("failed to read body: %w", err)
		}
		if !b.done {
			return p, errors.New("body read to its end but not done")
		}
	}
	return p, nil
}

// readGo reads one request with Go's parser. Go's server, not http.ReadRequest, skips
// blank lines before a request; readGo skips them as readHead does.
func readGo(br *bufio.Reader) (*parsedRequest, error) {
	for {
		if b, _ := br.Peek(1); len(b) == 1 && b[0] == '\n' {
			br.Discard(1)
			continue
		}
		if b, _ := br.Peek(2); string(b) == "\r\n" {
			br.Discard(2)
			continue
		}
		break
	}
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	p := &parsedRequest{req: req}
	p.body, err = io.ReadAll(req.Body)
	if err != nil {
		return p, fmt.Errorf("failed to read body: %w", err)
	}
	return p, nil
}

// sameRequest says how ours differs from Go's reading of the same request, if at all.
func sameRequest(ours, gos *parsedRequest) string {
	o, g := ours.req, gos.req
	var diffs []string
	check := func(what string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			diffs = append(diffs, fmt.Sprintf("%s: ours %q, Go's %q", what, fmt.Sprint(a), fmt.Sprint(b)))
		}
	}
	check("method", o.Method, g.Method)
	check("target", o.RequestURI, g.RequestURI)
	check("URL", o.URL.String(), g.URL.String())
	check("proto", o.Proto, g.Proto)
	check("host", o.Host, g.Host)
	// Go moves the Trailer header into Request.Trailer; the router keeps it (and drops
	// the client's trailer fields).
	oh := o.Header.Clone()
	delete(oh, "Trailer")
	check("header", oh, g.Header)
	check("content length", o.ContentLength, g.ContentLength)
	check("transfer encoding", o.TransferEncoding, g.TransferEncoding)
	check("close", o.Close, g.Close)
	check("body", string(ours.body), string(gos.body))
	return strings.Join(diffs, "; ")
}

// validRequests are requests both parsers must read alike, each alone or back to back.
var validRequests = []string{
	"GET / HTTP/1.1\r\nHost: a.localhost\r\n\r\n",
	"GET /p/a%20th?q=1&r=%2F#frag HTTP/1.1\r\nHost: a.localhost:8080\r\nAccept: */*\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]:65535\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: 127.0.0.1:0\r\n\r\n",
	"HEAD /x HTTP/1.1\r\nHost: a.localhost\r\nConnection: close\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a.localhost\r\n\r\n",
	"GET http://b.localhost/abs?x=y HTTP/1.1\r\nHost: ignored.localhost\r\n\r\n",
	"GET http://b.localhost:81/ HTTP/1.0\r\n\r\n",
	"DELETE /r HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 0\r\n\r\n",
	"PATCH /r HTTP/1.1\r\nhost: a.localhost\r\ncontent-length: 3\r\n\r\nabc",
	"POST /form HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 11\r\nContent-Length: 11\r\n\r\nhello=world",
	"POST /l HTTP/1.1\r\nHost: a.localhost\r\nContent-Length:   007\t\r\n\r\n1234567",
	"PUT /c HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
	"PUT /c HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: CHUNKED\r\n\r\n" +
		"5;name=value;quoted=\"a b\"\r\nhello\r\nA;x\r\n0123456789\r\n0;last\r\n\r\n",
	"POST /t HTTP/1.1\r\nHost: a.localhost\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"3\r\nabc\r\n0\r\nX-Sum: 123\r\nX-Other:  v \r\n\r\n",
	"POST /z HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET /dup HTTP/1.1\r\nHost: a.localhost\r\nX-Dup: 1\r\nx-dup: 2\r\nX-DUP: 3\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
	"GET /empty HTTP/1.1\r\nHost: a.localhost\r\nX-Empty:\r\nX-Spaces:    \r\n\r\n",
	"GET /obs HTTP/1.1\r\nHost: a.localhost\r\nX-Latin: caf\xe9 \xff\r\nX-Tab: a\tb\r\n\r\n",
	"GET /tok HTTP/1.1\r\nHost: a.localhost\r\nX-!#$%&'*+-.^_`|~09: v\r\n\r\n",
	"GET /old HTTP/1.0\r\n\r\n",
	"GET /old HTTP/1.0\r\nHost: a.localhost\r\nConnection: Keep-Alive\r\n\r\n",
	"POST /old HTTP/1.0\r\nHost: a.localhost\r\nConnection: foo, keep-alive\r\nContent-Length: 4\r\n\r\nbody",
	"GET /c HTTP/1.1\r\nHost: a.localhost\r\nConnection: upgrade, close\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHost: a.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"\r\n\r\nGET /lead HTTP/1.1\r\nHost: a.localhost\r\n\r\n",
	"\n\nGET /lead-lf HTTP/1.1\r\nHost: a.localhost\r\n\r\n",
	"GET /lf HTTP/1.1\nHost: a.localhost\nX-A: b\n\n",
	"POST /lf HTTP/1.1\nHost: a.localhost\r\nContent-Length: 2\n\r\nok",
	"POST /lf HTTP/1.1\nHost: a.localhost\nTransfer-Encoding: chunked\n\n2\r\nok\r\n0\r\n\r\n",
	"GET /v HTTP/1.2\r\nHost: a.localhost\r\n\r\n",
	"M-SEARCH /x HTTP/1.1\r\nHost: a.localhost\r\n\r\n",
	"POST /big HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("0123456789", 500),
	"POST /bigc HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"1388\r\n" + strings.Repeat("abcdefghij", 500) + "\r\n0\r\n\r\n",
	"GET /longhdr HTTP/1.1\r\nHost: a.localhost\r\nX-Long: " + strings.Repeat("v", 9000) + "\r\n\r\n",
	"POST /looks-like-a-head HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 43\r\n\r\n" +
		"GET /smuggled HTTP/1.1\r\nHost: a.localhost\r\n\r\n",
}

func TestParserAgreesWithGo(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(1))
	// Each request alone, then all back to back (pipelined), each in many random splits.
	streams := append([]string{}, validRequests...)
	streams = append(streams, strings.Join(validRequests, ""))
	for i, stream := range streams {
		gr := bufio.NewReader(strings.NewReader(stream))
		var want []*parsedRequest
		for {
			p, err := readGo(gr)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("stream %d: Go refuses request %d: %v", i, len(want), err)
			}
			want = append(want, p)
		}
		if len(want) == 0 {
			t.Fatalf("stream %d: Go reads no request", i)
		}
		for split := 0; split < 20; split++ {
			maxPiece := []int{1, 3, 17, 4096}[split%4]
			br := bufio.NewReaderSize(&pieceReader{data: []byte(stream), rng: rng, max: maxPiece}, 4096)
			for n, w := range want {
				got, err := readOurs(br)
				if err != nil {
					t.Fatalf("stream %d split %d request %d (%s %s): %v", i, split, n, w.req.Method, w.req.RequestURI, err)
				}
				if d := sameRequest(got, w); d != "" {
					t.Fatalf("stream %d split %d request %d: %s", i, split, n, d)
				}
			}
			if _, err := readHead(br, testHeadMax, nil); err != io.EOF {
				t.Fatalf("stream %d split %d: after the last request: %v, want io.EOF", i, split, err)
			}
		}
	}
}

func TestParserRefusals(t *testing.T) {
	t.Parallel()
	get := "GET / HTTP/1.1\r\nHost: a.localhost\r\n"
	post := "POST / HTTP/1.1\r\nHost: a.localhost\r\n"
	for _, tc := range []struct {
		name   string
		raw    string
		status int
	}{
		{"no target", "GET HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
		{"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"method not a token", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"control in target", "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"DEL in target", "GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bare CR in request line", "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bare CR ending request line", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", 400},
		{"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bad version", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400},
		{"lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
		{"no version", "GET /\r\nHost: a\r\n\r\n", 400},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"HTTP/0.9 version", "GET / HTTP/0.9\r\n\r\n", 505},
		{"HTTP/3", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505},
		{"CONNECT", "CONNECT a.localhost:443 HTTP/1.1\r\nHost: a.localhost:443\r\n\r\n", 405},
		{"obs-fold", get + "X-A: 1\r\n  2\r\n\r\n", 400},
		{"obs-fold with tab", get + "X-A: 1\r\n\t2\r\n\r\n", 400},
		{"header starting with space", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
		{"space before colon", get + "X-A : 1\r\n\r\n", 400},
		{"tab before colon", get + "X-A\t: 1\r\n\r\n", 400},
		{"no colon", get + "X-A 1\r\n\r\n", 400},
		{"empty name", get + ": 1\r\n\r\n", 400},
		{"name not a token", get + "X(A): 1\r\n\r\n", 400},
		{"bare CR in value", get + "X-A: 1\r2\r\n\r\n", 400},
		{"bare CR line", get + "\r\r\n\r\n", 400},
		{"NUL in value", get + "X-A: 1\x002\r\n\r\n", 400},
		{"control in value", get + "X-A: 1\x0b2\r\n\r\n", 400},
		{"DEL in value", get + "X-A: 1\x7f\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
		{"two Hosts differing", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400},
		{"no Host on 1.1", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400},
		{"absolute form without Host on 1.1", "GET http://a/ HTTP/1.1\r\n\r\n", 400},
		{"absolute form authority not a host", "GET http://a\"b/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"Host with at", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400},
		{"Host port then a list", "GET / HTTP/1.1\r\nHost: a.localhost:80,evil.example\r\n\r\n", 400},
		{"Host port a name", "GET / HTTP/1.1\r\nHost: a.localhost:evil.example\r\n\r\n", 400},
		{"Host port empty", "GET / HTTP/1.1\r\nHost: a.localhost:\r\n\r\n", 400},
		{"Host port 6 digits", "GET / HTTP/1.1\r\nHost: a.localhost:000080\r\n\r\n", 400},
		{"Host port over 65535", "GET / HTTP/1.1\r\nHost: a.localhost:65536\r\n\r\n", 400},
		{"Host port signed", "GET / HTTP/1.1\r\nHost: a.localhost:+80\r\n\r\n", 400},
		{"Host two ports", "GET / HTTP/1.1\r\nHost: a.localhost:80:81\r\n\r\n", 400},
		{"Host IP literal then junk", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400},
		{"Host IP literal bad port", "GET / HTTP/1.1\r\nHost: [::1]:x\r\n\r\n", 400},
		{"Host IP literal unclosed", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
		{"Host bracket in name", "GET / HTTP/1.1\r\nHost: a]b\r\n\r\n", 400},
		{"absolute form authority port a name", "GET http://a.localhost:b/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"asterisk for GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"CL and TE", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE and CL", post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
		{"TE and CL zero", post + "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", 400},
		{"TE on 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE identity", post + "Transfer-Encoding: identity\r\n\r\n", 501},
		{"TE gzip, chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"TE chunked, chunked", post + "Transfer-Encoding: chunked, chunked\r\n\r\n", 501},
		{"two TE headers", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
		{"TE chunked with junk", post + "Transfer-Encoding: chunked;q=1\r\n\r\n", 501},
		{"TE xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n", 501},
		{"TE empty", post + "Transfer-Encoding:\r\n\r\n", 501},
		{"CL signed", post + "Content-Length: +5\r\n\r\n", 400},
		{"CL negative", post + "Content-Length: -5\r\n\r\n", 400},
		{"CL hex", post + "Content-Length: 0x5\r\n\r\n", 400},
		{"CL list", post + "Content-Length: 5, 5\r\n\r\n", 400},
		{"CL inner space", post + "Content-Length: 5 5\r\n\r\n", 400},
		{"CL empty", post + "Content-Length:\r\n\r\n", 400},
		{"CL conflicting", post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
		{"CL conflicting by zeros", post + "Content-Length: 5\r\nContent-Length: 05\r\n\r\n", 400},
		{"CL overflow", post + "Content-Length: 99999999999999999999\r\n\r\n", 400},
		{"CL 19 digits", post + "Content-Length: 9223372036854775807\r\n\r\n", 400},
		{"head too large", get + "X-Big: " + strings.Repeat("a", testHeadMax) + "\r\n\r\n", 431},
		{"many headers too large", get + strings.Repeat("X-A: 1\r\n", testHeadMax/8) + "\r\n", 431},
	} {
		br := bufio.NewReader(strings.NewReader(tc.raw))
		got, err := readOurs(br)
		var re *requestError
		if !errors.As(err, &re) {
			t.Errorf("%s: %v, want a refusal with status %d", tc.name, err, tc.status)
			continue
		}
		if re.status != tc.status {
			t.Errorf("%s: status %d (%s), want %d", tc.name, re.status, re.reason, tc.status)
		}
		if got != nil {
			t.Errorf("%s: refused but a request came out: %+v", tc.name, got.req)
		}
		if re.ambiguous != strings.HasPrefix(tc.name, "CL and TE") && re.ambiguous != strings.HasPrefix(tc.name, "TE and CL") {
			t.Errorf("%s: ambiguous=%v", tc.name, re.ambiguous)
		}
	}
}

// TestBodyRefusals: bodies whose framing is broken fail to read, and never end as if
// complete (which would let the bytes after them be read as a request).
func TestBodyRefusals(t *testing.T) {
	t.Parallel()
	te := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tc := range []struct{ name, raw string }{
		{"short Content-Length body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"},
		{"bad chunk size", te + "zz\r\nhello\r\n0\r\n\r\n"},
		{"signed chunk size", te + "+5\r\nhello\r\n0\r\n\r\n"},
		{"chunk size overflow", te + "10000000000000000\r\nx\r\n0\r\n\r\n"},
		{"chunk longer than its size", te + "3\r\nhello\r\n0\r\n\r\n"},
		{"chunk shorter than its size", te + "9\r\nhello\r\n0\r\n\r\n"},
		{"bare LF after chunk size", te + "5\nhello\r\n0\r\n\r\n"},
		{"bare LF after chunk data", te + "5\r\nhello\n0\r\n\r\n"},
		{"bare CR in chunk line", te + "5\r;x\r\nhello\r\n0\r\n\r\n"},
		{"bare LF after last chunk", te + "5\r\nhello\r\n0\n\r\n"},
		{"no last chunk", te + "5\r\nhello\r\n"},
		{"no end of trailer", te + "0\r\nX-A: 1\r\n"},
		{"trailer not a field", te + "0\r\nnot a field\r\n\r\n"},
		{"trailer obs-fold", te + "0\r\nX-A: 1\r\n 2\r\n\r\n"},
		{"trailer bare CR", te + "0\r\nX-A: 1\r2\r\n\r\n"},
		{"trailer ended by bare LF", te + "0\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"trailer line ended by bare LF", te + "0\r\nX-A: 1\n\r\n"},
		{"trailer too long", te + "0\r\n" + strings.Repeat("X-A: 1\r\n", testHeadMax/8+1) + "\r\n"},
		{"chunk line too long", te + "5;" + strings.Repeat("e", 5000) + "\r\nhello\r\n0\r\n\r\n"},
		{"many tiny chunks with long extensions", te + strings.Repeat("1;"+strings.Repeat("e", 100)+"\r\nx\r\n", 500) + "0\r\n\r\n"},
	} {
		br := bufio.NewReader(strings.NewReader(tc.raw))
		got, err := readOurs(br)
		if err == nil {
			t.Errorf("%s: body read as complete: %q", tc.name, got.body)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range validRequests {
		f.Add([]byte(s))
	}
	f.Add([]byte(strings.Join(validRequests[:6], "")))
	for _, s := range []string{
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
		"GET http://x/ HTTP/1.1\r\nHost: y\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a=b\r\nx\r\n0\r\nT: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 01\r\nContent-Length: 1\r\n\r\nx",
		"POST / HTTP/1.1\r\nHost: a:1\r\nTransfer-Encoding: chunked\r\n\r\n1; a = \"q\\\" ;\" ;b\t=\tc\r\nx\r\n0;z=\"\"\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	for _, s := range fuzzFindings {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstGo(t, data)
	})
}

// fuzzFindings are inputs the fuzzer found; each is a regular test case too.
var fuzzFindings = []string{
	// A trailer section ended by a bare LF: Go refuses it (it wants CRLF CRLF ahead),
	// and so does the router now.
	"0 * HTTP/1.1\nHost:\nTrAnsfer-EnCoding:CHUNKED\n\n00\r\n\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\nGET /next HTTP/1.1\nHost: a\n\n",
	"0 * HTTP/1.1\nHost:\nTrAnsfer-EnCoding:Chunked\n\n0\r\n\n\r0",
}

// checkAgainstGo reads requests off data with both parsers for as long as ours accepts
// them: each one ours accepts, Go must accept and frame the same way.
func checkAgainstGo(t *testing.T, data []byte) {
	t.Helper()
	oc, gc := &countingReader{r: bytes.NewReader(data)}, &countingReader{r: bytes.NewReader(data)}
	ob, gb := bufio.NewReader(oc), bufio.NewReader(gc)
	for n := 0; n < 8; n++ {
		ours, err := readOurs(ob)
		if ours == nil {
			return // refused (or nothing left): nothing reached a dyno
		}
		gos, gerr := readGo(gb)
		if gos == nil {
			t.Fatalf("request %d: ours accepts %s %q, Go refuses: %v", n, ours.req.Method, ours.req.RequestURI, gerr)
		}
		o, g := ours.req, gos.req
		if o.Method != g.Method || o.RequestURI != g.RequestURI || o.Host != g.Host {
			t.Fatalf("request %d: ours %s %q host %q, Go's %s %q host %q", n, o.Method, o.RequestURI, o.Host, g.Method, g.RequestURI, g.Host)
		}
		if o.ContentLength != g.ContentLength || !reflect.DeepEqual(o.TransferEncoding, g.TransferEncoding) {
			t.Fatalf("request %d: ours length %d %q, Go's %d %q", n, o.ContentLength, o.TransferEncoding, g.ContentLength, g.TransferEncoding)
		}
		if err != nil {
			return // the body failed: the connection ends here
		}
		if gerr != nil {
			t.Fatalf("request %d: ours reads body %q to its end, Go fails: %v", n, ours.body, gerr)
		}
		if !bytes.Equal(ours.body, gos.body) {
			t.Fatalf("request %d: ours reads body %q, Go's %q", n, ours.body, gos.body)
		}
		if ol, gl := oc.n-ob.Buffered(), gc.n-gb.Buffered(); ol != gl {
			t.Fatalf("request %d: ours ends at byte %d, Go's at %d", n, ol, gl)
		}
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestFuzzFindings(t *testing.T) {
	t.Parallel()
	for i, s := range fuzzFindings {
		t.Run(strconv.Itoa(i), func(t *testing.T) { checkAgainstGo(t, []byte(s)) })
	}
}

// TestConnectionTokensTrimmedAsGo: Connection tokens are trimmed of spaces and tabs
// only (RFC 9110 OWS), as Go does; a no-break space (obs-text, allowed in values) is
// part of the token.
func TestConnectionTokensTrimmedAsGo(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\u00a0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: \u0085close\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\u00a0\r\n\r\n",
	} {
		ours, err := readOurs(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		gos, err := readGo(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			t.Fatalf("%q: Go: %v", raw, err)
		}
		if d := sameRequest(ours, gos); d != "" {
			t.Errorf("%q: %s", raw, d)
		}
	}
}

// TestAbsoluteFormAuthorityChecked: the authority of an absolute-form target replaces
// the Host header (RFC 9112 3.2.2), so it must pass the same check: it is what the router
// routes by, logs and sends to the dyno as Host.
func TestAbsoluteFormAuthorityChecked(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"GET http://a\"b<>/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://a%c2%85b/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://a`b|c/ HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		if req, err := parseRequest(raw, nil); err == nil {
			t.Errorf("%q accepted with host %q", raw, req.Host)
		}
	}
}

// TestCheckRequestKeepsToTheParsersRules: an HTTP/2 request's method, :path and
// :authority (Go's server lets spaces through in all three) are checked by CheckRequest
// before the router writes them in a request head to a dyno. It refuses what the
// HTTP/1.1 parser would refuse in a request line and Host header, and more: targets not
// in origin form, and no authority.
func TestCheckRequestKeepsToTheParsersRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, target, host string
		status               int
	}{
		{"GET", "/echo?a=b", "myapp.localhost", 0},
		{"POST", "/p/a%20th?q=1#f", "myapp.localhost:8443", 0},
		{"OPTIONS", "*", "myapp.localhost", 0},
		{"M-SEARCH", "//double", "[::1]:1", 0},
		{"GET", "/echo?a b", "myapp.localhost", 400},
		{"GET", "/echo?a\tb", "myapp.localhost", 400},
		{"GET", "/echo\x7f", "myapp.localhost", 400},
		{"GET", "/echo\x00", "myapp.localhost", 400},
		{"GET", "/echo\r\nX-Injected: 1", "myapp.localhost", 400},
		{"GET /smuggle?", "/echo", "myapp.localhost", 400},
		{"GET\t", "/echo", "myapp.localhost", 400},
		{"G(T", "/echo", "myapp.localhost", 400},
		{"", "/echo", "myapp.localhost", 400},
		{"GET", "*", "myapp.localhost", 400},
		{"GET", "echo", "myapp.localhost", 400},
		{"GET", "http://evil.example/echo", "myapp.localhost", 400},
		{"CONNECT", "myapp.localhost:443", "myapp.localhost:443", 405},
		{"GET", "/echo", "myapp.localhost:1 junk", 400},
		{"GET", "/echo", "myapp.localhost:80,evil.example", 400},
		{"GET", "/echo", "myapp.localhost:evil.example", 400},
		{"GET", "/echo", "myapp.localhost:123456", 400},
		{"GET", "/echo", "myapp.localhost\r\nX-Injected: 1", 400},
		{"GET", "/echo", "", 400},
	} {
		status, reason := CheckRequest(tc.method, tc.target, tc.host)
		if status != tc.status {
			t.Errorf("%q %q host %q: status %d (%s), want %d", tc.method, tc.target, tc.host, status, reason, tc.status)
		}
		if status != 0 && reason == "" {
			t.Errorf("%q %q host %q: refused without a reason", tc.method, tc.target, tc.host)
		}
		// Whatever the parser takes in a request line and a Host header, CheckRequest
		// takes too, and the other way round, but for its own refusals.
		if tc.target == "echo" || strings.HasPrefix(tc.target, "http:") || tc.host == "" ||
			strings.ContainsAny(tc.method+tc.target+tc.host, "\r\n") {
			continue
		}
		_, perr := parseRequest(tc.method+" "+tc.target+" HTTP/1.1\r\nHost: "+tc.host+"\r\n\r\n", nil)
		pstatus := 0
		if perr != nil {
			pstatus = perr.status
		}
		if pstatus != status {
			t.Errorf("%q %q host %q: CheckRequest says %d, the parser %d", tc.method, tc.target, tc.host, status, pstatus)
		}
	}
}
