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
	if !ok1 || !ok2 {
		return nil, badRequest("malformed request line")
	}
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		return nil, badRequest("malformed HTTP version")
	}
	if major != 1 {
		return nil, &requestError{status: http.StatusHTTPVersionNotSupported, reason: "unsupported HTTP version"}
	}
	if err := checkRequestLine(method, target); err != nil {
		return nil, err
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
	case len(hosts) == 1 && !ValidHost(hosts[0]):
		return nil, badRequest("malformed Host header")
	case len(hosts) == 0 && req.ProtoAtLeast(1, 1):
		return nil, badRequest("missing Host header")
	}
	if u.Host != "" && !ValidHost(u.Host) {
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

// checkRequestLine checks the method and target of a request line as the router will
// write them to a dyno: the method an RFC 9110 token, the target without spaces or
// control characters, '*' for OPTIONS only, no CONNECT. Client requests over HTTP/1.1
// (parseRequest) and over HTTP/2 (CheckRequest) alike go through it, so that whatever
// reaches a dyno in a request line is what the router's own parser would take.
func checkRequestLine(method, target string) *requestError {
	switch {
	case !isToken(method):
		return badRequest("malformed method")
	case !validTarget(target):
		return badRequest("malformed request target")
	case method == http.MethodConnect:
		return &requestError{status: http.StatusMethodNotAllowed, reason: "CONNECT is not routed"}
	case target == "*" && method != http.MethodOptions:
		return badRequest("asterisk-form request target for a method other than OPTIONS")
	}
	return nil
}

// CheckRequest checks a request that did not come through the HTTP/1.1 parser (an
// HTTP/2 stream, whose :method, :path and :authority Go's server passes with spaces in
// them) against the rules that parser applies to a request line and a Host header, before
// the router writes its method, target and host in a request head to a dyno. The target
// must be in origin form (or '*' for OPTIONS) and the host a non-empty host[:port]. It
// returns the status to answer and why, or 0.
func CheckRequest(method, target, host string) (status int, reason string) {
	if err := checkRequestLine(method, target); err != nil {
		return err.status, err.reason
	}
	if target[0] != '/' && target != "*" {
		return http.StatusBadRequest, "request target not in origin form"
	}
	if host == "" {
		return http.StatusBadRequest, "missing authority"
	}
	if !ValidHost(host) {
		return http.StatusBadRequest, "malformed authority"
	}
	return 0, ""
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

// ValidHost says whether s is a Host header (or an HTTP/2 :authority) the router takes:
// a URI host (RFC 3986 3.2.2: a registered name or IPv4 address, or an IP literal in
// brackets), then optionally ':' and a port of 1 to 5 digits, 0 to 65535. Empty is
// allowed (HTTP/1.1 allows an empty Host when the target has no authority). The parser
// checks Host headers and absolute-form authorities with it, CheckRequest HTTP/2
// authorities, canonicalHost any Host it routes by.
func ValidHost(s string) bool {
	host, chars := s, &regNameChars
	if len(s) > 0 && s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, s, chars = s[1:end], s[end+1:], &ipLiteralChars
		if host == "" || s != "" && s[0] != ':' {
			return false
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		host, s = s[:i], s[i:]
	} else {
		s = ""
	}
	for i := 0; i < len(host); i++ {
		if !chars[host[i]] {
			return false
		}
	}
	return s == "" || validPort(s[1:])
}

// validPort allows the port of a Host: 1 to 5 digits, at most 65535.
func validPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// The characters of a registered name or IPv4 address (unreserved, sub-delims and
// percent-encoding), and of an IP literal's inside (those and ':', RFC 3986 3.2.2).
var (
	regNameChars   = alnumAnd("-._~!$&'()*+,;=%")
	ipLiteralChars = alnumAnd("-._~!$&'()*+,;=%:")
)
