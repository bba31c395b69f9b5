package router

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
)

// The router reads client requests itself, strictly: every way of framing a message that
// two HTTP implementations might read differently (the root of request smuggling) is
// refused rather than resolved, before any byte reaches a dyno.

// requestError is a request refused before routing: the status to answer and why.
type requestError struct {
	status int
	reason string
	// ambiguous marks a request with both Content-Length and Transfer-Encoding, which
	// is logged as a likely smuggling attempt.
	ambiguous bool
}

func (e *requestError) Error() string { return e.reason }

func badRequest(reason string) *requestError {
	return &requestError{status: http.StatusBadRequest, reason: reason}
}

var errHeadTooLarge = &requestError{status: http.StatusRequestHeaderFieldsTooLarge, reason: "request head too large"}

// readHead reads one request head from br: the request line and header lines through
// the blank line that ends them, at most max bytes. Blank lines before the request line
// are skipped (RFC 9112 2.2). io.EOF means the connection ended cleanly before a head.
func readHead(br *bufio.Reader, max int, buf []byte) ([]byte, error) {
	buf = buf[:0]
	lineStart := 0
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)+len(frag) > max {
			return nil, errHeadTooLarge
		}
		buf = append(buf, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line := buf[lineStart:]
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			if lineStart == 0 {
				buf = buf[:0] // a blank line before the request line
				continue
			}
			return buf, nil
		}
		lineStart = len(buf)
	}
}

// parseRequest makes a request of a head read by readHead. Bodies are attached by the
// caller (see requestBody).
func parseRequest(head string) (*http.Request, *requestError) {
	line, rest := nextLine(head)
	method, after, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(after, " ")
	if !ok1 || !ok2 || !isToken(method) || !validTarget(target) {
		return nil, badRequest("malformed request line")
	}
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		return nil, badRequest("malformed HTTP version")
	}
	if major != 1 {
		return nil, &requestError{status: http.StatusHTTPVersionNotSupported, reason: "unsupported HTTP version"}
	}
	if method == http.MethodConnect {
		return nil, &requestError{status: http.StatusMethodNotAllowed, reason: "CONNECT is not routed"}
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, badRequest("malformed request target")
	}
	req := &http.Request{Method: method, URL: u, Proto: proto, ProtoMajor: major, ProtoMinor: minor,
		RequestURI: target, Body: http.NoBody}
	h, rerr := parseHeader(rest)
	if rerr != nil {
		return nil, rerr
	}
	req.Header = h

	hosts := h["Host"]
	switch {
	case len(hosts) > 1:
		return nil, badRequest("more than one Host header")
	case len(hosts) == 1 && !validHost(hosts[0]):
		return nil, badRequest("malformed Host header")
	case len(hosts) == 0 && req.ProtoAtLeast(1, 1):
		return nil, badRequest("missing Host header")
	}
	req.Host = u.Host
	if req.Host == "" && len(hosts) == 1 {
		req.Host = hosts[0]
	}
	delete(h, "Host")

	if err := framing(req); err != nil {
		return nil, err
	}
	req.Close = wantsClose(req)
	return req, nil
}

// framing reads how the body is delimited: ContentLength (-1 for chunked) and
// TransferEncoding.
func framing(req *http.Request) *requestError {
	h := req.Header
	tes, cls := h["Transfer-Encoding"], h["Content-Length"]
	if len(tes) > 0 && len(cls) > 0 {
		return &requestError{status: http.StatusBadRequest, reason: "both Content-Length and Transfer-Encoding", ambiguous: true}
	}
	if len(tes) > 0 {
		switch {
		case !req.ProtoAtLeast(1, 1):
			return badRequest("Transfer-Encoding in an HTTP/1.0 request")
		case len(tes) > 1 || !strings.EqualFold(tes[0], "chunked"):
			return &requestError{status: http.StatusNotImplemented, reason: "unsupported Transfer-Encoding"}
		}
		req.TransferEncoding = []string{"chunked"}
		req.ContentLength = -1
		delete(h, "Transfer-Encoding")
		return nil
	}
	if len(cls) == 0 {
		return nil
	}
	for _, v := range cls[1:] {
		if v != cls[0] {
			return badRequest("conflicting Content-Length headers")
		}
	}
	n, ok := parseLength(cls[0])
	if !ok {
		return badRequest("malformed Content-Length")
	}
	req.ContentLength = n
	h["Content-Length"] = cls[:1]
	return nil
}

// parseLength reads a Content-Length: decimal digits only, as RFC 9110 8.6 says.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// wantsClose says whether the client wants its connection closed after the response.
func wantsClose(req *http.Request) bool {
	conn := req.Header["Connection"]
	if req.ProtoAtLeast(1, 1) {
		return hasToken(conn, "close")
	}
	return !hasToken(conn, "keep-alive")
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var f string
			f, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// parseHeader reads header lines, each "name: value". Obsolete line folding, bare CRs,
// whitespace before the colon and control characters in values are refused.
func parseHeader(lines string) (http.Header, *requestError) {
	n := strings.Count(lines, "\n")
	h := make(http.Header, n)
	strs := make([]string, n) // one backing array for the common single values
	for {
		var line string
		line, lines = nextLine(lines)
		if line == "" {
			return h, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, badRequest("folded header line")
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(name) {
			return nil, badRequest("malformed header line")
		}
		value = strings.Trim(value, " \t")
		if !validValue(value) {
			return nil, badRequest("invalid character in header " + name)
		}
		key := http.CanonicalHeaderKey(name)
		if vs := h[key]; vs != nil {
			h[key] = append(vs, value)
		} else if len(strs) > 0 {
			strs[0] = value
			h[key], strs = strs[:1:1], strs[1:]
		} else {
			h[key] = []string{value}
		}
	}
}

// nextLine splits the first line off s, without its line ending (CRLF or LF). A CR
// anywhere else in the line makes it invalid: it is kept, and the checks refuse it.
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// isToken says whether s is an RFC 9110 token (methods, header names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validValue allows visible characters, spaces, tabs and obs-text in a header value.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validTarget allows a request target without spaces or control characters.
func validTarget(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost allows the characters of a URI host and port (RFC 3986 3.2.2).
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		if !hostChars[s[i]] {
			return false
		}
	}
	return true
}

var hostChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()*+,;=:[]%" {
		t[c] = true
	}
	return t
}()

// requestBody reads a request's body off the client connection: exactly ContentLength
// bytes, or chunks through the trailer. done says whether it was read to its end, so the
// connection can carry the next request.
type requestBody struct {
	src      io.Reader // chunked decoder or the connection's reader
	br       *bufio.Reader
	remain   int64 // for a Content-Length body
	chunked  bool
	maxTrail int
	done     bool
	err      error
	// onFirstRead answers "Expect: 100-continue" before the first read.
	onFirstRead func()
}

func newRequestBody(br *bufio.Reader, length int64, maxTrailer int) *requestBody {
	b := &requestBody{br: br, remain: length, maxTrail: maxTrailer}
	if length < 0 {
		b.chunked = true
		b.src = httputil.NewChunkedReader(br)
	} else {
		b.src = br
	}
	return b
}

func (b *requestBody) Read(p []byte) (int, error) {
	if b.onFirstRead != nil {
		b.onFirstRead()
		b.onFirstRead = nil
	}
	if b.err != nil {
		return 0, b.err
	}
	if !b.chunked {
		if b.remain == 0 {
			b.done, b.err = true, io.EOF
			return 0, io.EOF
		}
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
	}
	n, err := b.src.Read(p)
	b.remain -= int64(n)
	switch {
	case err == io.EOF && b.chunked:
		if terr := skipTrailer(b.br, b.maxTrail); terr != nil {
			err = terr
		} else {
			b.done = true
		}
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	case err == nil && !b.chunked && b.remain == 0:
		b.done, err = true, io.EOF
	}
	b.err = err
	return n, err
}

func (b *requestBody) Close() error { return nil }

// errBadTrailer is a chunked body's trailer that is malformed or too long.
var errBadTrailer = errors.New("malformed chunked trailer")

// skipTrailer reads the trailer section after the last chunk: header lines through a
// blank line. The router does not forward client trailers.
func skipTrailer(br *bufio.Reader, max int) error {
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return errBadTrailer
		}
		total += len(line)
		if total > max {
			return errBadTrailer
		}
		l, _ := nextLine(string(line))
		if l == "" {
			return nil
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok || !isToken(name) || !validValue(strings.Trim(value, " \t")) {
			return errBadTrailer
		}
	}
}
