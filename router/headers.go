package router

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers the router sets itself; the client's values are replaced (X-Forwarded-For is
// appended to instead, and X-Request-Id kept when sane). None of them, nor a name that
// reads as one once '_' is taken for '-' (underscoreAlias), reaches a dyno from a client.
var ownHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true,
	"Upgrade": true, "Content-Length": true, "Host": true, "Expect": true,
	"X-Request-Id": true, "X-Request-Start": true, "X-Forwarded-For": true,
	"X-Forwarded-Proto": true, "X-Forwarded-Port": true,
	// Between cluster routers only (forward.go).
	HopHeader: true, PeerKeyHeader: true, NotOwnerHeader: true,
	// Other ways of saying how the client reached the router, which the router does not
	// set: a client's own would stand in for X-Forwarded-Proto and -For in an app
	// (Rack 3 puts Forwarded before X-Forwarded-Proto, Rack reads X-Forwarded-Ssl: on
	// as https). No router sets them either, so a peer's forwarded request loses them
	// too.
	"Forwarded": true, "X-Forwarded-Ssl": true, "X-Forwarded-Scheme": true,
	"X-Forwarded-Host": true, "X-Real-Ip": true, "Front-End-Https": true, "X-Url-Scheme": true,
}

// saneRequestID says whether a client's X-Request-Id may be kept: 20 to 200 characters
// of letters, digits, '+', '/', '=' and '-', as Heroku's router requires.
func saneRequestID(id string) bool {
	if len(id) < 20 || len(id) > 200 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '+', c == '/', c == '=', c == '-':
		default:
			return false
		}
	}
	return true
}

// newUUID returns a random version 4 UUID. Request IDs need to be unique, not secret:
// they come from the runtime's ChaCha8 generator (no system call per request).
func newUUID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// clientIP is the address the request came from, without port.
func clientIP(req *http.Request) string {
	if host, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		return host
	}
	return req.RemoteAddr
}

// forwardedFor appends the client's address to any X-Forwarded-For it sent.
func forwardedFor(req *http.Request, ip string) string {
	prior := req.Header.Values("X-Forwarded-For")
	if len(prior) == 0 {
		return ip
	}
	return strings.Join(prior, ", ") + ", " + ip
}

// validPort says whether s is a TCP port number.
func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 1<<16 && s[0] != '+' && s[0] != '0'
}

// connectionTokens are the header names a Connection header lists, which are hop-by-hop
// too.
func connectionTokens(h http.Header) map[string]bool {
	var m map[string]bool
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = textprotoCanon(strings.Trim(f, " \t")); f != "" {
				if m == nil {
					m = make(map[string]bool)
				}
				m[f] = true
			}
		}
	}
	return m
}

func textprotoCanon(s string) string { return http.CanonicalHeaderKey(s) }

// isUpgrade reports whether the client asks to switch protocols, and to which.
func isUpgrade(req *http.Request) (string, bool) {
	up := req.Header.Get("Upgrade")
	if up == "" {
		return "", false
	}
	for _, v := range req.Header["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.Trim(f, " \t"), "upgrade") {
				return up, true
			}
		}
	}
	return "", false
}

// underscoreAlias says whether a header name with underscores reads as one of the
// router's own headers to a server that, as Rack's do, treats '_' and '-' alike
// (Content_Length, X_Forwarded_For): such a header could stand in for the real one.
func underscoreAlias(k string) bool {
	return strings.IndexByte(k, '_') >= 0 && ownHeaders[http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))]
}

// outbound describes the request as the router sends it to a dyno.
type outbound struct {
	req       *http.Request
	requestID string
	fwdFor    string
	proto     string
	port      string
	start     time.Time
	upgrade   string // protocol the client asked for, or ""
	length    int64  // body length, -1 for chunked, 0 for none
}

// headWriter is where a request head is written: the dyno connection's buffer, or the
// bytes of a request sent ahead.
type headWriter interface {
	WriteString(string) (int, error)
	WriteByte(byte) error
}

// writeHead writes the request line and headers to the dyno.
func (o *outbound) writeHead(bw headWriter) {
	req := o.req
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	uri := req.RequestURI
	if uri == "" || (req.URL != nil && req.URL.Scheme != "" && strings.Contains(uri, "://")) {
		// Absolute-form targets reach the dyno in origin form.
		uri = req.URL.RequestURI()
	}
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(req.Host)
	bw.WriteString("\r\n")
	conn := connectionTokens(req.Header)
	for k, vs := range req.Header {
		if ownHeaders[k] || conn[k] || underscoreAlias(k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("X-Request-Id: ")
	bw.WriteString(o.requestID)
	bw.WriteString("\r\nX-Request-Start: t=")
	bw.WriteString(strconv.FormatInt(o.start.UnixMicro(), 10))
	bw.WriteString("\r\nX-Forwarded-For: ")
	bw.WriteString(o.fwdFor)
	bw.WriteString("\r\nX-Forwarded-Proto: ")
	bw.WriteString(o.proto)
	if o.port != "" {
		bw.WriteString("\r\nX-Forwarded-Port: ")
		bw.WriteString(o.port)
	}
	bw.WriteString("\r\n")
	if o.upgrade != "" {
		bw.WriteString("Connection: Upgrade\r\nUpgrade: ")
		bw.WriteString(o.upgrade)
		bw.WriteString("\r\n")
	}
	switch {
	case o.length > 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(o.length, 10))
		bw.WriteString("\r\n")
	case o.length < 0:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
}

// forbiddenTrailers are fields a trailer must not carry (RFC 9110 6.5.1: framing,
// routing, authentication, caching and content fields): a dyno's are dropped.
var forbiddenTrailers = map[string]bool{
	"Content-Length": true, "Transfer-Encoding": true, "Trailer": true, "Host": true,
	"Connection": true, "Keep-Alive": true, "Content-Encoding": true, "Content-Type": true,
	"Content-Range": true, "Cache-Control": true, "Expires": true, "Date": true, "Age": true,
	"Location": true, "Retry-After": true, "Vary": true, "Set-Cookie": true,
	"Www-Authenticate": true, "Proxy-Authenticate": true, "Authorization": true,
}

// copyResponseHeader copies a dyno's response headers for the client, without
// hop-by-hop ones.
func copyResponseHeader(dst, src http.Header) {
	conn := connectionTokens(src)
	for k, vs := range src {
		if !hopByHop(k, conn) {
			dst[k] = vs
		}
	}
}

// takeResponseHeader makes the dyno's response headers the client's response headers,
// without hop-by-hop ones: when w can take src whole (nothing was set on it yet), src
// itself, with those deleted, is the client's now; otherwise they are copied.
func takeResponseHeader(w http.ResponseWriter, src http.Header) {
	if t, ok := w.(interface{ TakeHeader(http.Header) bool }); ok && t.TakeHeader(src) {
		conn := connectionTokens(src)
		for k := range src {
			if hopByHop(k, conn) {
				delete(src, k)
			}
		}
		return
	}
	copyResponseHeader(w.Header(), src)
}

// hopByHop says whether a dyno's response header k (conn: the names its Connection
// header lists) stays between the dyno and the router.
func hopByHop(k string, conn map[string]bool) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		NotOwnerHeader, // a dyno cannot make a forwarding router serve its request again
		StaleHeader:    // the router's to set, never a dyno's
		return true
	}
	return conn[k]
}
