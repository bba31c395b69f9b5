package loadgen

import (
	"bytes"
	"net"
	"strconv"
	"strings"
)

// maxHead bounds a request head a Backend reads; no proxy under test sends one near it.
const maxHead = 64 << 10

var (
	okResponse  = []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	badResponse = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
)

// head is what a Backend reads of a request head.
type head struct {
	serviceUs     int64 // ServiceHeader, 0 when absent
	index         int   // IndexHeader, -1 when absent
	due           int64 // DueHeader, 0 when absent
	contentLength int64
	close         bool // Connection: close
}

// parseHead reads the fields a Backend acts on from a request head (request line and
// header lines, without the blank line). A request with a chunked body, or a length
// that does not parse, is refused: no proxy under test sends one.
func parseHead(b []byte) (head, bool) {
	h := head{index: -1}
	_, rest, _ := bytes.Cut(b, []byte("\r\n")) // the request line
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return h, false
		}
		v := string(bytes.TrimSpace(value))
		var err error
		switch n := string(name); {
		case strings.EqualFold(n, ServiceHeader):
			h.serviceUs, err = strconv.ParseInt(v, 10, 64)
		case strings.EqualFold(n, IndexHeader):
			h.index, err = strconv.Atoi(v)
		case strings.EqualFold(n, DueHeader):
			h.due, err = strconv.ParseInt(v, 10, 64)
		case strings.EqualFold(n, "Content-Length"):
			h.contentLength, err = strconv.ParseInt(v, 10, 64)
			if h.contentLength < 0 {
				return h, false
			}
		case strings.EqualFold(n, "Transfer-Encoding"):
			return h, false
		case strings.EqualFold(n, "Connection"):
			h.close = strings.EqualFold(v, "close")
		}
		if err != nil {
			return h, false
		}
	}
	return h, true
}

// serveConn answers the requests of one connection in turn, keeping it open between
// them (HTTP/1.1 keep-alive) until the client closes it or asks to.
func (b *Backend) serveConn(c net.Conn) {
	buf := make([]byte, 0, 4096)
	write := func(p []byte) error { _, err := c.Write(p); return err }
	for {
		end := bytes.Index(buf, []byte("\r\n\r\n"))
		for end < 0 {
			if len(buf) >= maxHead {
				_ = write(badResponse)
				return
			}
			if len(buf) == cap(buf) {
				buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
			}
			n, err := c.Read(buf[len(buf):cap(buf)])
			if err != nil {
				return // the client closed the connection, or StopBackends did
			}
			buf = buf[:len(buf)+n]
			end = bytes.Index(buf, []byte("\r\n\r\n"))
		}
		h, ok := parseHead(buf[:end])
		if !ok || end > maxHead {
			_ = write(badResponse)
			return
		}
		buf = buf[:copy(buf, buf[end+4:])]
		for h.contentLength > 0 { // a body is read and dropped
			if len(buf) == 0 {
				n, err := c.Read(buf[:cap(buf)])
				if err != nil {
					return
				}
				buf = buf[:n]
			}
			k := int(min(h.contentLength, int64(len(buf))))
			buf = buf[:copy(buf, buf[k:])]
			h.contentLength -= int64(k)
		}
		if err := b.serve(h, write); err != nil || h.close {
			return
		}
	}
}
