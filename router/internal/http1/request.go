package http1

import (
	"net/http"
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

// parseRequest makes a request of a head read by readHead, a copy of base (nil: none)
// with the head's fields: a base made once per connection with the connection's context
// spares each request the copy WithContext makes. Bodies are attached by the caller
// (see requestBody).
func parseRequest(head string, base *http.Request) (*http.Request, *requestError) {
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
	u, uerr := url.ParseRequestURI(target)
	if uerr != nil {
		return nil, badRequest("malformed request target")
	}
	req := new(http.Request)
	if base != nil {
		*req = *base
	}
	req.Method, req.URL, req.Proto, req.ProtoMajor, req.ProtoMinor = method, u, proto, major, minor
	req.RequestURI, req.Body = target, http.NoBody
	h, err := parseHeader(rest)
	if err != nil {
		return nil, badRequest(err.Error())
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
	if u.Host != "" && !validHost(u.Host) {
		return nil, badRequest("malformed authority in the request target")
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

// framing sets how the body is delimited: ContentLength (-1 for chunked) and
// TransferEncoding.
func framing(req *http.Request) *requestError {
	n, err := bodyLength(req.Header, req.ProtoAtLeast(1, 1))
	switch {
	case err != nil && err.unsupported:
		return &requestError{status: http.StatusNotImplemented, reason: err.reason}
	case err != nil:
		return &requestError{status: http.StatusBadRequest, reason: err.reason, ambiguous: err.ambiguous}
	case n == -1:
		req.TransferEncoding = []string{"chunked"}
		delete(req.Header, "Transfer-Encoding")
	case n == -2:
		n = 0
	}
	req.ContentLength = n
	return nil
}

// wantsClose says whether the client wants its connection closed after the response.
func wantsClose(req *http.Request) bool {
	conn := req.Header["Connection"]
	if req.ProtoAtLeast(1, 1) {
		return hasToken(conn, "close")
	}
	return !hasToken(conn, "keep-alive")
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

var hostChars = alnumAnd("-._~!$&'()*+,;=:[]%")
