package http1

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynogrid/dynogrid/router/internal/sysconn"
)

// response writes one answer on a client connection. It frames the body as the headers
// say: the Content-Length given, else chunked for HTTP/1.1, else until the connection
// closes. It is an http.ResponseWriter and supports http.ResponseController (flush,
// read and write deadlines, hijack).
type Response struct {
	cc        *clientConn
	req       *http.Request
	header    http.Header
	wroteHead bool
	noBody    bool  // HEAD, 204, 304: no body whatever the headers say
	chunked   bool  // the body goes out chunked
	length    int64 // the declared Content-Length, or -1
	written   int64
	closeConn bool // the connection ends after this response
	hijacked  bool
	// writeTimeout bounds how long the client may take to accept each write.
	writeTimeout time.Duration
	trailers     []string // declared in the Trailer header
	// body is the request's body while only this goroutine reads it: nil when there is
	// none, or once it is lent to a goroutine that streams it (see leavesBodyUnread).
	body *bodyReader
}

var _ http.ResponseWriter = (*Response)(nil)

func (w *Response) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header, 8)
	}
	return w.header
}

// TakeHeader makes h the response's header, when nothing was set on the response's own
// yet (it says whether it did): the caller hands h over, and a proxy relaying an
// upstream response spares itself a copy. Not after WriteHeader.
func (w *Response) TakeHeader(h http.Header) bool {
	if len(w.header) > 0 || w.wroteHead {
		return false
	}
	w.header = h
	return true
}

// SetWriteTimeout bounds how long the client may take to accept each write of this
// response (Config.WriteTimeout until then).
func (w *Response) SetWriteTimeout(d time.Duration) { w.writeTimeout = d }

// LendBody says that another goroutine reads the request body from now on, so that the
// response no longer looks at it (see leavesBodyUnread). The server reads past what is
// left of it once the handler returns, as for any body.
func (w *Response) LendBody() { w.body = nil }

// WatchLeave starts noticing the client closing its connection while the request waits,
// which ends the request's context. It does nothing unless the request's body has been
// read whole (a byte arriving then starts a pipelined request). The watch ends before
// the server reads the connection again.
func (w *Response) WatchLeave() { w.cc.watchLeave() }

// ParkResult is why Park returned.
type ParkResult int

const (
	// Woken: woken was set (and Unpark called), or the deadline passed.
	Woken ParkResult = iota
	// Left: the client closed its connection; the request's context has ended.
	Left
	// Unwatched: the client cannot be watched (it sent more, or the connection is not
	// one Park can watch): the caller waits otherwise (WatchLeave).
	Unwatched
)

// Park waits, in the calling goroutine, until *woken is not zero, the client leaves, or
// until passes, with no goroutine or timer of its own: the wait is a read of the
// client's connection in the runtime's poller, with until as its deadline, which Unpark
// (from another goroutine, after setting *woken) moves into the past. A Park with
// *woken set before it started returns at once. It leaves a read deadline in force,
// which every later read of the connection replaces. Only a connection with nothing
// left to read of the request can be watched, as for WatchLeave.
func (w *Response) Park(until time.Time, woken *atomic.Int32) ParkResult {
	cc := w.cc
	sc, ok := cc.c.(*sysconn.Conn)
	if !ok || cc.watching != nil || !skipBlankLines(cc.br) {
		return Unwatched
	}
	_ = cc.c.SetReadDeadline(until)
	for woken.Load() == 0 {
		switch sc.WaitInput() {
		case sysconn.Timeout:
			return Woken
		case sysconn.Bytes:
			return Unwatched // the next request is coming: the client is there
		default:
			cc.cancel()
			return Left
		}
	}
	return Woken
}

// Unpark ends a Park of the request, in progress or to come, once *woken is set.
func (w *Response) Unpark() { _ = w.cc.c.SetReadDeadline(time.Unix(1, 0)) }

// WriteHeader sends the status line and headers (into the connection's buffer). Interim
// 1xx answers other than 101 go out at once and leave the final one to come.
func (w *Response) WriteHeader(code int) {
	if w.wroteHead || w.hijacked {
		return
	}
	bw := w.cc.bw
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// No 1xx to an HTTP/1.0 client (RFC 9110 15.2), and 100 Continue only from
		// sendContinue: the router answers Expect itself.
		if code == http.StatusContinue || !w.req.ProtoAtLeast(1, 1) {
			return
		}
		b := appendStatusLine(bw.AvailableBuffer(), code)
		b = appendHeaderLines(b, w.header)
		bw.Write(append(b, "\r\n"...))
		w.cc.armWrite(w.writeTimeout)
		w.cc.fail(bw.Flush())
		return
	}
	w.wroteHead = true
	// Appended in the writer's free space, the head needs no buffer of its own.
	b, f := AppendResponseHead(bw.AvailableBuffer(), code, w.header, HeadOptions{
		Method: w.req.Method,
		HTTP11: w.req.ProtoAtLeast(1, 1),
		Close:  w.req.Close || w.cc.draining() || w.leavesBodyUnread(),
	})
	bw.Write(b)
	w.noBody, w.chunked, w.length, w.trailers = f.NoBody, f.Chunked, f.Length, f.Trailers
	w.closeConn = w.closeConn || f.Close
}

// date is the Date header line of one second, made once for all the responses of that
// second.
type date struct {
	sec  int64
	line string
}

var lastDate atomic.Pointer[date]

// dateLine returns the Date header line for now, CRLF included.
func dateLine(now time.Time) string {
	sec := now.Unix()
	if d := lastDate.Load(); d != nil && d.sec == sec {
		return d.line
	}
	d := &date{sec: sec, line: "Date: " + now.UTC().Format(http.TimeFormat) + "\r\n"}
	lastDate.Store(d)
	return d.line
}

// leavesBodyUnread says whether the connection will have to close after this response
// because the request body cannot be read past (see clientConn.discardBody): a client
// still waiting for 100 Continue, a failed body, or more left than maxDiscard. RFC 9110
// 10.1.1: say so with "Connection: close".
func (w *Response) leavesBodyUnread() bool {
	b := w.body
	return b != nil && !b.done && (b.stuck() || !b.chunked && b.remain > maxDiscard)
}

// Write sends body bytes, chunked or within the declared length.
func (w *Response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHead {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody || len(p) == 0 {
		return len(p), nil
	}
	var tooLong bool
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		p, tooLong = p[:w.length-w.written], true
		w.closeConn = true
	}
	bw := w.cc.bw
	w.cc.armWrite(w.writeTimeout)
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if w.chunked && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	w.written += int64(n)
	if err != nil {
		w.cc.fail(err)
		return n, err
	}
	if tooLong {
		return n, http.ErrContentLength
	}
	return n, nil
}

// FlushError sends what is buffered to the client (http.ResponseController.Flush).
func (w *Response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHead {
		w.WriteHeader(http.StatusOK)
	}
	w.cc.armWrite(w.writeTimeout)
	err := w.cc.bw.Flush()
	w.cc.fail(err)
	return err
}

func (w *Response) Flush() { _ = w.FlushError() }

// SetReadDeadline bounds reads of the client's body.
func (w *Response) SetReadDeadline(t time.Time) error { return w.cc.c.SetReadDeadline(t) }

// SetWriteDeadline bounds writes to the client.
func (w *Response) SetWriteDeadline(t time.Time) error { return w.cc.c.SetWriteDeadline(t) }

// Hijack hands the client connection over (protocol upgrades). Whatever the client sent
// after the request is in the returned reader.
func (w *Response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHead {
		return nil, nil, errors.New("response already started")
	}
	w.cc.unwatch()
	w.hijacked = true
	// As net/http's Hijack: the new owner starts without the request's deadlines.
	_ = w.cc.c.SetDeadline(time.Time{})
	w.cc.writeBy = time.Time{}
	return w.cc.c, bufio.NewReadWriter(w.cc.br, w.cc.bw), nil
}

// finish ends a response whose head was written: the last chunk and trailers, then a
// flush. A body shorter than its Content-Length can only be ended by closing the
// connection.
func (w *Response) finish() {
	bw := w.cc.bw
	if w.chunked {
		// The last chunk, with the trailer fields the header declared, then those set
		// under http.TrailerPrefix (as net/http takes them).
		b := append(bw.AvailableBuffer(), "0\r\n"...)
		for _, k := range w.trailers {
			b = AppendField(b, k, w.header[k])
		}
		for k, vs := range w.header {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				if name = http.CanonicalHeaderKey(name); !slices.Contains(w.trailers, name) {
					b = AppendField(b, name, vs)
				}
			}
		}
		bw.Write(append(b, "\r\n"...))
	}
	if !w.noBody && w.length >= 0 && w.written < w.length {
		w.closeConn = true
	}
	w.cc.armWrite(w.writeTimeout)
	w.cc.fail(bw.Flush())
}
