package router

import (
	"bytes"
	"io"
	"net"
	"strconv"
)

// Go's HTTP server resolves a request that carries both Content-Length and
// Transfer-Encoding by dropping Content-Length (RFC 9112 6.3 allows that of an
// intermediary). The router rejects such requests instead (400): framingConn watches the
// bytes of each client connection, holds every request head until it is complete, and
// replaces an ambiguous one with a head Go's parser answers 400 to. It follows body
// framing (Content-Length, chunked) to find the next head, and steps aside for good after
// an Upgrade or CONNECT request, or anything it cannot follow (Go then judges alone).

const (
	frHead = iota
	frBodyLength
	frChunkSize
	frChunkData
	frChunkEnd
	frTrailer
	frPass
	frRejected
)

// rejectHead is what Go's server sees instead of an ambiguous request: a Content-Length
// it refuses with 400 Bad Request before any handler runs.
var rejectHead = []byte("POST / HTTP/1.1\r\nHost: ambiguous-framing.invalid\r\nContent-Length: ambiguous\r\n\r\n")

type framingListener struct {
	net.Listener
	maxHead  int
	rejected func(remote string)
}

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, maxHead: l.maxHead, rejected: l.rejected}, nil
}

type framingConn struct {
	net.Conn
	maxHead  int
	rejected func(remote string)

	state  int
	head   []byte // an incomplete request head, held back
	line   []byte // an incomplete chunk-size or trailer line
	remain int64  // body or chunk bytes left
	out    []byte // bytes ready for the server
	rerr   error  // read error to return once out is drained
	buf    []byte
}

func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *framingConn) Read(p []byte) (int, error) {
	if c.state == frPass && len(c.out) == 0 && len(c.head) == 0 {
		return c.Conn.Read(p)
	}
	for len(c.out) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if c.state == frRejected {
			return 0, io.EOF
		}
		if c.buf == nil {
			c.buf = make([]byte, 4096)
		}
		n, err := c.Conn.Read(c.buf)
		c.feed(c.buf[:n])
		if err != nil {
			if isTimeout(err) {
				// A deadline (the server aborting its background read, or a header
				// timeout) ends this Read only: what is held back stays held.
				if len(c.out) > 0 {
					break
				}
				return 0, err
			}
			if len(c.head) > 0 {
				// Let Go see (and judge) what arrived of a head.
				c.out = append(c.out, c.head...)
				c.head = nil
			}
			c.rerr = err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	if len(c.out) == 0 {
		c.out = nil
	}
	return n, nil
}

// feed runs the framing state machine over newly read bytes, moving what the server may
// see to out.
func (c *framingConn) feed(b []byte) {
	for len(b) > 0 {
		switch c.state {
		case frPass:
			c.out = append(c.out, b...)
			return
		case frRejected:
			return
		case frHead:
			c.head = append(c.head, b...)
			b = nil
			end := headEnd(c.head)
			if end < 0 {
				if len(c.head) > c.maxHead {
					// Too big to hold: Go answers 431 on its own.
					c.out = append(c.out, c.head...)
					c.head = nil
					c.state = frPass
				}
				continue
			}
			head, rest := c.head[:end], c.head[end:]
			c.head = nil
			next, ok := c.judge(head)
			if !ok {
				c.out = append(c.out, rejectHead...)
				c.state = frRejected
				if c.rejected != nil {
					c.rejected(c.RemoteAddr().String())
				}
				return
			}
			c.out = append(c.out, head...)
			c.state = next
			b = append([]byte(nil), rest...)
		case frBodyLength:
			n := int64(len(b))
			if n > c.remain {
				n = c.remain
			}
			c.out = append(c.out, b[:n]...)
			b = b[n:]
			c.remain -= n
			if c.remain == 0 {
				c.state = frHead
			}
		case frChunkSize, frTrailer:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				c.line = append(c.line, b...)
				c.out = append(c.out, b...)
				if len(c.line) > 4096 {
					c.state = frPass
				}
				return
			}
			c.line = append(c.line, b[:i+1]...)
			c.out = append(c.out, b[:i+1]...)
			b = b[i+1:]
			line := bytes.TrimRight(c.line, "\r\n")
			c.line = c.line[:0]
			if c.state == frTrailer {
				if len(line) == 0 {
					c.state = frHead
				}
				continue
			}
			if j := bytes.IndexByte(line, ';'); j >= 0 {
				line = line[:j]
			}
			size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
			switch {
			case err != nil || size < 0:
				c.state = frPass // Go rejects the bad chunk itself
			case size == 0:
				c.state = frTrailer
			default:
				c.remain = size
				c.state = frChunkData
			}
		case frChunkData, frChunkEnd:
			n := min(int64(len(b)), c.remain)
			c.out = append(c.out, b[:n]...)
			b = b[n:]
			c.remain -= n
			switch {
			case c.remain > 0:
			case c.state == frChunkData:
				c.remain = 2 // the CRLF after the data
				c.state = frChunkEnd
			default:
				c.state = frChunkSize
			}
		}
	}
}

// headEnd is the length of the head (through its blank line) at the start of b, or -1.
// Blank lines before a request line are skipped by Go, and here.
func headEnd(b []byte) int {
	start := 0
	for start < len(b) && (b[start] == '\r' || b[start] == '\n') {
		start++
	}
	if start == len(b) {
		return -1
	}
	if i := bytes.Index(b[start:], []byte("\r\n\r\n")); i >= 0 {
		return start + i + 4
	}
	if i := bytes.Index(b[start:], []byte("\n\n")); i >= 0 {
		return start + i + 2
	}
	return -1
}

// judge reads a head's framing: the state after it, and false when it is ambiguous.
func (c *framingConn) judge(head []byte) (int, bool) {
	lines := bytes.Split(head, []byte("\n"))
	var reqLine []byte
	for len(lines) > 0 && len(bytes.TrimSpace(lines[0])) == 0 {
		lines = lines[1:]
	}
	if len(lines) == 0 {
		return frPass, true
	}
	reqLine, lines = lines[0], lines[1:]
	var cls [][]byte
	var te []byte
	hasTE, upgrade := false, false
	for _, l := range lines {
		l = bytes.TrimRight(l, "\r")
		i := bytes.IndexByte(l, ':')
		if i <= 0 {
			continue
		}
		name, value := l[:i], bytes.TrimSpace(l[i+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			cls = append(cls, value)
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			hasTE = true
			te = value
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = true
		}
	}
	if hasTE && len(cls) > 0 {
		return frRejected, false
	}
	if upgrade || bytes.HasPrefix(reqLine, []byte("CONNECT ")) {
		return frPass, true
	}
	switch {
	case hasTE:
		if bytes.EqualFold(bytes.TrimSpace(te), []byte("chunked")) {
			return frChunkSize, true
		}
		return frPass, true // Go answers 501 or 400
	case len(cls) > 0:
		n, err := strconv.ParseInt(string(cls[0]), 10, 64)
		if err != nil || n < 0 || cls[0][0] == '+' {
			return frPass, true // Go answers 400
		}
		if n == 0 {
			return frHead, true
		}
		c.remain = n
		return frBodyLength, true
	}
	return frHead, true
}
