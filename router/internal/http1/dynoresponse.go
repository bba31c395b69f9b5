package http1

import (
	"bufio"
	"net/http"
	"strings"
)

// ResponseError is a failure to read a response head; Nothing says no byte arrived.
type ResponseError struct {
	Err     error
	Nothing bool
}

func (e *ResponseError) Error() string { return "failed to read response: " + e.Err.Error() }
func (e *ResponseError) Unwrap() error { return e.Err }

// MaxResponseHead bounds a dyno's response head.
const MaxResponseHead = 1 << 20

// MaxTrailer bounds a dyno's chunked body's trailer section.
const MaxTrailer = 64 << 10

// ReadResponse reads the dyno's response head, skipping interim 1xx responses other than
// 101, and attaches its body. It peeks first so that a timeout with nothing received
// leaves the connection in a clean state (ResponseError.Nothing).
func ReadResponse(br *bufio.Reader, method string) (*http.Response, error) {
	var scratch [2048]byte
	for {
		if _, err := br.Peek(1); err != nil {
			return nil, &ResponseError{Err: err, Nothing: true}
		}
		head, err := readHead(br, MaxResponseHead, scratch[:0])
		if err != nil {
			return nil, &ResponseError{Err: err}
		}
		resp, err := ParseResponseHead(head)
		if err != nil {
			return nil, &ResponseError{Err: err}
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			attachBody(resp, br, method)
			return resp, nil
		}
	}
}

// parseResponse reads a response head. Framing that could be read two ways (both
// Content-Length and Transfer-Encoding, conflicting lengths, an encoding other than
// chunked) is refused: on a kept-alive connection it would let one client's response
// end up in another's.
func parseResponse(head string) (*http.Response, error) {
	line, rest := nextLine(head)
	proto, status, _ := strings.Cut(line, " ")
	major, minor, ok := http.ParseHTTPVersion(proto)
	code, reason, _ := strings.Cut(status, " ")
	if !ok || major != 1 || len(code) != 3 || !validValue(reason) {
		return nil, errHeader("malformed status line")
	}
	n, ok := parseLength(code)
	if !ok || n < 100 {
		return nil, errHeader("malformed status code")
	}
	h, err := parseHeader(rest)
	if err != nil {
		return nil, err
	}
	resp := &http.Response{StatusCode: int(n), Status: status, Proto: proto, ProtoMajor: major,
		ProtoMinor: minor, Header: h, Body: http.NoBody}
	conn := h["Connection"]
	resp.Close = hasToken(conn, "close") || minor == 0 && !hasToken(conn, "keep-alive")

	n, ferr := bodyLength(h, minor > 0)
	switch {
	case ferr != nil:
		return nil, errHeader(ferr.reason)
	case n == -1:
		resp.TransferEncoding = []string{"chunked"}
	case n == -2:
		n = -1 // until the connection closes, unless there is no body
	}
	resp.ContentLength = n
	return resp, nil
}

// attachBody gives a final response the reader of its body. A 101 has none: the
// connection carries another protocol after it.
func attachBody(resp *http.Response, br *bufio.Reader, method string) {
	switch ResponseFraming(resp, method) {
	case ChunkedBody:
		b := newBodyReader(br, -1, MaxTrailer)
		resp.Trailer = make(http.Header)
		b.trailer = resp.Trailer
		resp.Body = b
	case LengthBody:
		resp.Body = newBodyReader(br, resp.ContentLength, 0)
	case UntilClose:
		b := newBodyReader(br, 0, 0)
		b.untilClose = true
		resp.Body = b
		resp.Close = true
	}
}
