package router

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynogrid/dynogrid/router/internal/sysconn"
)

// bodySource is a request body as the router forwards it. A body that fits the prefetch
// is held whole (mem), so the request stays replayable and a slow client never holds a
// dyno while it uploads; a longer one is streamed (prefix, then rest).
type bodySource struct {
	mem    []byte
	prefix []byte
	rest   io.Reader
	// lent: a peer router read some of a streamed body (see guardedBody), so the request
	// cannot be sent anywhere again.
	lent atomic.Bool
}

func (b *bodySource) streaming() bool { return b.rest != nil }

// replayable says whether the request can still be sent whole to a dyno or a peer.
func (b *bodySource) replayable() bool { return !b.lent.Load() }

// errClientBody marks a failure to read the client's body (as opposed to writing to the
// dyno).
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "failed to read request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// prepareBody reads up to the prefetch size of the request body before any dyno is
// taken, and says how the rest will be sent (ob.length). A failure is a client problem:
// the code to answer. b is where the body goes.
func (r *Router) prepareBody(w http.ResponseWriter, req *http.Request, ob *outbound, b *bodySource) (*bodySource, *Code) {
	if req.Body == nil || req.Body == http.NoBody {
		return b, nil
	}
	if max := r.cfg.MaxBodyBytes; max > 0 {
		if req.ContentLength > max {
			return nil, codeBodyTooBig
		}
		req.Body = http.MaxBytesReader(w, req.Body, max)
	}
	n := int64(r.cfg.BodyPrefetch)
	if req.ContentLength >= 0 && req.ContentLength < n {
		n = req.ContentLength
	}
	buf := make([]byte, n+1) // one more byte tells a body that ends here from a longer one
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(r.cfg.BodyReadTimeout))
	m, err := readFull(req.Body, buf)
	_ = rc.SetReadDeadline(time.Time{})
	switch {
	case err == io.EOF:
		b.mem = buf[:m]
		ob.length = int64(m)
		return b, nil
	case err == nil:
		b.prefix = buf[:m]
		b.rest = req.Body
		ob.length = req.ContentLength // -1: chunked
		return b, nil
	default:
		code := clientBodyCode(err)
		if code == codeBadRequest && req.Context().Err() != nil {
			code = H27
		}
		return nil, code
	}
}

// clientBodyCode names a failure to read a client's body.
func clientBodyCode(err error) *Code {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return codeBodyTooBig
	case errors.Is(err, os.ErrDeadlineExceeded):
		return codeClientTimeout
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return H27
	default:
		return codeBadRequest
	}
}

// readFull reads until buf is full (nil error) or the body ends (io.EOF).
func readFull(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// bodyWriter streams the rest of a long request body to a dyno in its own goroutine, so
// that the dyno's response can be read (and may come early) at the same time.
type bodyWriter struct {
	done    chan error
	stopped atomic.Bool
	result  error
	waited  bool
	// readingClient is set while the writer waits for the client's next body bytes:
	// a dyno that has not answered meanwhile waits for the client, not the reverse.
	readingClient atomic.Bool
	// renew pushes the client's read deadline idle further away, unless the writer is
	// stopped: deadlineMu keeps it from undoing stop's deadline in the past.
	renew      func()
	deadlineMu sync.Mutex
}

// startBodyWriter starts streaming the rest of the body to dc. The client must send
// some of it every idle, or the body fails (408).
func (r *Router) startBodyWriter(w http.ResponseWriter, dc *dynoConn, b *bodySource, length int64) *bodyWriter {
	idle := r.cfg.BodyReadTimeout
	rc := http.NewResponseController(w)
	var deadline time.Time
	bw := &bodyWriter{done: make(chan error, 1)}
	bw.renew = func() {
		bw.deadlineMu.Lock()
		defer bw.deadlineMu.Unlock()
		// Set again only once less than idle is left (a tenth more than needed, at
		// most 100 ms): a timer update per slack, not per read.
		if now := time.Now(); !bw.stopped.Load() && deadline.Sub(now) < idle {
			deadline = now.Add(idle + sysconn.RenewSlack(idle))
			_ = rc.SetReadDeadline(deadline)
		}
	}
	go func() {
		err := writeBody(dc, b, length, bw)
		if err != nil {
			dc.clean = false
			if bw.stopped.Load() {
				err = errWriterStopped
			}
		}
		var ce *clientBodyError
		bw.done <- err
		if errors.As(err, &ce) {
			// The client failed: end the body for the dyno, which then answers or
			// closes; the router waits for that before it frees the dyno.
			closeWrite(dc.c)
		}
	}()
	return bw
}

// errWriterStopped is the writer's result when the router stopped it.
var errWriterStopped = errors.New("body writer stopped")

// wait gives the writer up to grace to finish on its own (a dyno usually answers
// right after the last byte of the body), then stops it. It says whether the whole body
// was written.
func (bw *bodyWriter) wait(w http.ResponseWriter, dc *dynoConn, grace time.Duration) bool {
	if !bw.waited {
		t := time.NewTimer(grace)
		select {
		case err := <-bw.done:
			bw.waited, bw.result = true, err
		case <-t.C:
		}
		t.Stop()
	}
	if !bw.waited {
		bw.stop(w, dc)
		return false
	}
	return bw.result == nil
}

// finished says whether the body was written completely, without blocking.
func (bw *bodyWriter) finished() (bool, error) {
	if bw.waited {
		return true, bw.result
	}
	select {
	case err := <-bw.done:
		bw.waited, bw.result = true, err
		return true, err
	default:
		return false, nil
	}
}

// stop ends the writer: it unblocks a read of the client's body and a write to the dyno
// (with deadlines in the past; the dyno connection stays open for reading) and waits.
// It returns the writer's own error, if it failed before being stopped.
func (bw *bodyWriter) stop(w http.ResponseWriter, dc *dynoConn) error {
	if bw.waited {
		return bw.result
	}
	bw.deadlineMu.Lock()
	bw.stopped.Store(true)
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	bw.deadlineMu.Unlock()
	_ = dc.c.SetWriteDeadline(time.Now())
	bw.result, bw.waited = <-bw.done, true
	if bw.result == errWriterStopped {
		return nil
	}
	return bw.result
}

// waitsForClient says whether the writer is waiting for the client's body (rather
// than for the dyno to take what was sent).
func (bw *bodyWriter) waitsForClient() bool { return bw.readingClient.Load() }

// writeBody writes prefix and rest, chunked when length < 0, and flushes.
func writeBody(dc *dynoConn, b *bodySource, length int64, bw *bodyWriter) error {
	var dst io.Writer = dc.bw
	var chunked io.WriteCloser
	if length < 0 {
		chunked = httputil.NewChunkedWriter(dc.bw)
		dst = chunked
	}
	if _, err := dst.Write(b.prefix); err != nil {
		return err
	}
	src := b.rest
	if length >= 0 {
		src = io.LimitReader(b.rest, length-int64(len(b.prefix)))
	}
	buf := make([]byte, 32<<10)
	var sent int64
	for {
		bw.renew()
		bw.readingClient.Store(true)
		n, rerr := src.Read(buf)
		bw.readingClient.Store(false)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return err
			}
			sent += int64(n)
			if err := dc.bw.Flush(); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return &clientBodyError{rerr}
		}
	}
	if length >= 0 && sent != length-int64(len(b.prefix)) {
		return &clientBodyError{io.ErrUnexpectedEOF}
	}
	if chunked != nil {
		if err := chunked.Close(); err != nil {
			return err
		}
		if _, err := dc.bw.WriteString("\r\n"); err != nil {
			return err
		}
	}
	return dc.bw.Flush()
}
