package http1

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Response heads as bytes: how a final response's body is framed and which header
// lines go out, for Response (through its bufio.Writer) and for callers that keep their
// output in a byte slice alike.

// HeadOptions is what the head of a final response depends on besides its status and
// header.
type HeadOptions struct {
	Method string // the request's: a response to HEAD has no body
	HTTP11 bool   // the client speaks HTTP/1.1: a body of unknown length can go chunked
	// Close says that the connection must close after this response: the client asked,
	// the server is draining, or the request body cannot be read past.
	Close bool
}

// Framing is how the body of a response goes out, as its head says.
type Framing struct {
	NoBody   bool     // HEAD, 204, 304: no body whatever the header says
	Chunked  bool     // the body goes out chunked
	Close    bool     // the connection ends after this response
	Length   int64    // the declared Content-Length, or -1
	Trailers []string // the canonical names the Trailer header declares, when chunked
}

// AppendResponseHead appends the head of a final response (not a 1xx other than 101)
// to dst: the status line, h's fields and the framing the router adds, and says how the
// body must go out. The body keeps to a Content-Length h gives (one, well formed);
// otherwise it goes chunked to an HTTP/1.1 client, or until the connection closes to an
// HTTP/1.0 one. h's own Connection, Transfer-Encoding and Keep-Alive fields never go
// out: the router frames the response and manages the connection itself. "Connection:
// close" goes out when the connection ends after the response (h has it too, or o.Close),
// so that the client does not send another request on it. A Content-Length that does
// not frame the body (malformed or repeated, or on a 204) is dropped from h. A Date is
// added unless h has one.
func AppendResponseHead(dst []byte, code int, h http.Header, o HeadOptions) ([]byte, Framing) {
	f := Framing{Length: -1}
	f.NoBody = o.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	if cl := h["Content-Length"]; len(cl) == 1 {
		if n, ok := parseLength(cl[0]); ok {
			f.Length = n
		}
	}
	if f.Length < 0 || code == http.StatusNoContent {
		delete(h, "Content-Length")
	}
	f.Close = o.Close || hasToken(h["Connection"], "close")
	if f.Length < 0 && !f.NoBody {
		if o.HTTP11 {
			f.Chunked = true
		} else {
			f.Close = true
		}
	}
	if f.Chunked {
		for _, v := range h["Trailer"] {
			for v != "" {
				var k string
				k, v, _ = strings.Cut(v, ",")
				if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
					f.Trailers = append(f.Trailers, k)
				}
			}
		}
	}

	dst = appendStatusLine(dst, code)
	for k, vs := range h {
		switch k {
		case "Connection", "Transfer-Encoding", "Keep-Alive":
			continue
		case "Trailer":
			if !f.Chunked {
				continue
			}
		default:
			if strings.HasPrefix(k, http.TrailerPrefix) {
				continue // a trailer field, for the end of the body
			}
		}
		dst = AppendField(dst, k, vs)
	}
	if _, ok := h["Date"]; !ok {
		dst = append(dst, dateLine(time.Now())...)
	}
	if f.Chunked {
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	switch {
	case f.Close:
		dst = append(dst, "Connection: close\r\n"...)
	case !o.HTTP11:
		dst = append(dst, "Connection: keep-alive\r\n"...)
	}
	return append(dst, "\r\n"...), f
}

// appendStatusLine appends an HTTP/1.1 status line.
func appendStatusLine(dst []byte, code int) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	if text := http.StatusText(code); text != "" {
		dst = append(dst, text...)
	} else {
		dst = append(dst, "status code "...)
		dst = strconv.AppendInt(dst, int64(code), 10)
	}
	return append(dst, "\r\n"...)
}

// appendHeaderLines appends every field of h.
func appendHeaderLines(dst []byte, h http.Header) []byte {
	for k, vs := range h {
		dst = AppendField(dst, k, vs)
	}
	return dst
}

// AppendField appends a header field, a line per value. A name that is not a token is
// dropped, and line breaks in values become spaces, so that no value can start a
// header or a response of its own.
func AppendField(dst []byte, k string, vs []string) []byte {
	if !isToken(k) {
		return dst
	}
	for _, v := range vs {
		dst = append(dst, k...)
		dst = append(dst, ": "...)
		if strings.ContainsAny(v, "\r\n") {
			for i := 0; i < len(v); i++ {
				if c := v[i]; c == '\r' || c == '\n' {
					dst = append(dst, ' ')
				} else {
					dst = append(dst, c)
				}
			}
		} else {
			dst = append(dst, v...)
		}
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// AppendLastChunk appends the end of a chunked body: the last chunk, then a trailer
// section of the fields of trailers (AppendField's rules).
func AppendLastChunk(dst []byte, trailers http.Header) []byte {
	dst = append(dst, "0\r\n"...)
	for k, vs := range trailers {
		dst = AppendField(dst, k, vs)
	}
	return append(dst, "\r\n"...)
}
