package http1

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Message heads and refusals over byte slices, for a caller that reads connections into
// buffers of its own (an event loop) rather than through a bufio.Reader: the same rules
// as readHead, parseRequest and clientConn.refuse, one implementation of each.

// ErrIncomplete says that a buffer holds no whole message head yet: more bytes may
// complete it.
var ErrIncomplete = errors.New("http1: incomplete message head")

// FindHead finds the message head at the start of buf, as readHead reads it: blank
// lines before the start line are skipped (start is how many bytes they take), and the
// head, buf[start:end], runs through the blank line that ends it. A head of more than
// max bytes fails as readHead fails it (errHeadTooLarge, a 431 refusal for a request),
// also when no end is in buf yet but more than max bytes follow start: no more bytes can
// make it a head readHead would take. ErrIncomplete says buf holds no whole head yet;
// start is then the blank lines that may be dropped already.
func FindHead(buf []byte, max int) (start, end int, err error) {
	var s HeadScan
	return s.Find(buf, max)
}

// HeadScan is FindHead over a buffer that grows as bytes arrive: each Find looks only
// at the lines the last one had not seen whole, so that a head arriving in many small
// reads costs one pass over it, not one per read. The buffer's first byte must stay
// the head's first byte between calls (append to it, move it whole); Reset once the
// head it held is consumed.
type HeadScan struct {
	start int // the blank lines before the start line
	line  int // where the first line not seen whole begins
}

// Find is FindHead on buf, resuming where the last call stopped.
func (s *HeadScan) Find(buf []byte, max int) (start, end int, err error) {
	if s.line > len(buf) {
		s.Reset() // not the buffer it scanned: begin again
	}
	for {
		i := bytes.IndexByte(buf[s.line:], '\n')
		if i < 0 {
			break
		}
		next := s.line + i + 1
		if next-s.start > max {
			start = s.start
			s.Reset()
			return start, 0, errHeadTooLarge
		}
		if blankLine(buf[s.line:next]) {
			if s.line > s.start {
				start = s.start
				s.Reset()
				return start, next, nil
			}
			s.start = next // a blank line before the start line
		}
		s.line = next
	}
	if len(buf)-s.start > max {
		start = s.start
		s.Reset()
		return start, 0, errHeadTooLarge
	}
	return s.start, 0, ErrIncomplete
}

// Reset makes the next Find begin at the buffer's start.
func (s *HeadScan) Reset() { *s = HeadScan{} }

// blankLine says whether line, read through its LF, is empty: "\n" or "\r\n". One ends
// a head; before the start line, one is skipped (RFC 9112 2.2).
func blankLine(line []byte) bool {
	return len(line) == 1 || len(line) == 2 && line[0] == '\r'
}

// ParseRequestHead makes a request of a head found by FindHead (buf[start:end]), a copy
// of base (nil: none), as the server does: the request line and headers parsed and
// checked (parseRequest), then the Expect header, which the router answers itself. An
// HTTP/1.1 client that expects "100-continue" waits for 100 Continue before it sends
// the body: expect says so. Any other expectation is refused (417); an HTTP/1.0 client
// cannot expect anything (RFC 9110 10.1.1). The request has no body yet: the caller
// attaches it (req.ContentLength says how it is framed, -1 for chunked). A refusal is
// an error AppendRefusal answers.
func ParseRequestHead(head []byte, base *http.Request) (req *http.Request, expect bool, err error) {
	req, rerr := parseRequest(string(head), base)
	if rerr != nil {
		return nil, false, rerr
	}
	if ex := req.Header["Expect"]; len(ex) > 0 && req.ProtoAtLeast(1, 1) {
		if len(ex) > 1 || !strings.EqualFold(ex[0], "100-continue") {
			return nil, false, &requestError{status: http.StatusExpectationFailed, reason: "unsupported Expect"}
		}
		expect = true
	}
	return req, expect, nil
}

// RefusalInfo says what a refused request is answered (FindHead, ParseRequestHead, a
// client's body): the status, why, and whether the request had both Content-Length and
// Transfer-Encoding (logged as a likely smuggling attempt). ok is false for any other
// error: a read error or a timeout, which close the connection without an answer.
func RefusalInfo(err error) (status int, reason string, ambiguous bool, ok bool) {
	var re *requestError
	if !errors.As(err, &re) {
		return 0, "", false, false
	}
	return re.status, re.reason, re.ambiguous, true
}

// AppendRefusal appends the answer to a refused request (see RefusalInfo) to dst: the
// status and the reason in a short plain text body, and "Connection: close", since
// nothing after a refused head can be read as a request. ok is false, and dst as it
// was, for an error that gets no answer.
func AppendRefusal(dst []byte, err error) (out []byte, ok bool) {
	status, reason, _, ok := RefusalInfo(err)
	if !ok {
		return dst, false
	}
	text := http.StatusText(status)
	var num [20]byte
	code := strconv.AppendInt(num[:0], int64(status), 10)
	dst = appendStatusLine(dst, status)
	dst = append(dst, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(code)+1+len(text)+2+len(reason)+1), 10)
	dst = append(dst, "\r\n\r\n"...)
	dst = append(dst, code...)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, ": "...)
	dst = append(dst, reason...)
	dst = append(dst, '\n')
	return dst, true
}

// ParseResponseHead reads a dyno's response head found by FindHead (buf[start:end]),
// as ReadResponse does: strictly, refusing framing that could be read two ways. Interim
// 1xx responses are the caller's to skip (all but 101). The response has no body yet:
// ResponseFraming says how it is framed.
func ParseResponseHead(head []byte) (*http.Response, error) {
	return parseResponse(string(head))
}

// BodyKind is how a response's body is delimited.
type BodyKind int

const (
	// NoBody: the response has none, whatever its headers say (HEAD, 204, 304, a zero
	// Content-Length; 101 too, after which the connection carries another protocol).
	NoBody BodyKind = iota
	// LengthBody: ContentLength bytes.
	LengthBody
	// ChunkedBody: chunks through the trailer section (ChunkDecoder).
	ChunkedBody
	// UntilClose: everything until the dyno closes the connection, which then cannot
	// carry another response.
	UntilClose
)

// ResponseFraming says how the body of a final response read by ParseResponseHead is
// delimited, for a request of method. The caller handles 101 (NoBody here) itself.
func ResponseFraming(resp *http.Response, method string) BodyKind {
	switch code := resp.StatusCode; {
	case code == http.StatusSwitchingProtocols:
		return NoBody
	case method == http.MethodHead, code == http.StatusNoContent, code == http.StatusNotModified:
		return NoBody
	case resp.TransferEncoding != nil:
		return ChunkedBody
	case resp.ContentLength > 0:
		return LengthBody
	case resp.ContentLength < 0:
		return UntilClose
	}
	return NoBody
}
