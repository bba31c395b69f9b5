package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
)

// HTTP/1.1 messages as the router reads them, requests from clients and responses from
// dynos alike: heads read whole within a limit and parsed strictly, bodies framed by
// Content-Length, chunks or the connection's end.

// readHead reads one message head from br: the start line and header lines through the
// blank line that ends them, at most max bytes. Blank lines before the start line are
// skipped (RFC 9112 2.2). io.EOF means the connection ended cleanly before a head.
func readHead(br *bufio.Reader, max int, buf []byte) ([]byte, error) {
	buf = buf[:0]
	lineStart := 0
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)+len(frag) > max {
			return nil, errHeadTooLarge
		}
		buf = append(buf, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if blankLine(buf[lineStart:]) {
			if lineStart == 0 {
				buf = buf[:0] // a blank line before the start line
				continue
			}
			return buf, nil
		}
		lineStart = len(buf)
	}
}

// errHeader is a malformed header section.
type errHeader string

func (e errHeader) Error() string { return string(e) }

// parseHeader reads header lines, each "name: value", up to a blank line or the end.
// Obsolete line folding, bare CRs, whitespace before the colon and control characters
// in values are refused. Values are substrings of lines: one string holds them all.
func parseHeader(lines string) (http.Header, error) {
	n := strings.Count(lines, "\n")
	h := make(http.Header, n)
	strs := make([]string, n) // one backing array for the common single values
	// The first keys, to find a repeated one without a second map look-up per line.
	var seen [16]string
	nseen := 0
	for {
		var line string
		line, lines = nextLine(lines)
		if line == "" {
			return h, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, errHeader("folded header line")
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, errHeader("malformed header line")
		}
		token, canonical := tokenCanonical(name)
		if !token {
			return nil, errHeader("malformed header line")
		}
		value = trimOWS(value)
		if !validValue(value) {
			return nil, errHeader("invalid character in header " + name)
		}
		key := name
		if !canonical {
			key = http.CanonicalHeaderKey(name)
		}
		repeated := false
		if nseen < len(seen) {
			for _, k := range seen[:nseen] {
				if k == key {
					repeated = true
					break
				}
			}
		} else {
			_, repeated = h[key]
		}
		switch {
		case repeated:
			h[key] = append(h[key], value)
			continue
		case len(strs) > 0:
			strs[0] = value
			h[key], strs = strs[:1:1], strs[1:]
		default:
			h[key] = []string{value}
		}
		if nseen < len(seen) {
			seen[nseen] = key
			nseen++
		}
	}
}

// tokenCanonical says whether s is an RFC 9110 token, and whether it is a header name
// in canonical form already (as http.CanonicalHeaderKey writes it: upper case first and
// after each '-', lower case elsewhere), in one pass.
func tokenCanonical(s string) (token, canonical bool) {
	if s == "" {
		return false, false
	}
	canonical = true
	upper := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !tokenChars[c] {
			return false, false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	return true, canonical
}

// trimOWS drops the spaces and tabs around a header value.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// nextLine splits the first line off s, without its line ending (CRLF or LF). A CR
// anywhere else in the line makes it invalid: it is kept, and the checks refuse it.
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// isToken says whether s is an RFC 9110 token (methods, header names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

var tokenChars = alnumAnd("!#$%&'*+-.^_`|~")

// alnumAnd is a table of the ASCII letters and digits and the characters of extra.
func alnumAnd(extra string) (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range extra {
		t[c] = true
	}
	return t
}

// validValue allows visible characters, spaces, tabs and obs-text in a header value.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// framingError is body framing the router refuses: unsupported marks a transfer coding it
// does not implement, ambiguous a message with both Content-Length and
// Transfer-Encoding (a likely smuggling attempt).
type framingError struct {
	reason      string
	unsupported bool
	ambiguous   bool
}

func (e *framingError) Error() string { return e.reason }

// bodyLength reads how a message's body is delimited (RFC 9112 6): -1 for chunked, the
// Content-Length, or -2 when the headers say neither. Framing that two readers could
// take differently is refused: both headers, differing lengths, a length that is not
// plain digits, any coding but one "chunked", chunked in HTTP/1.0. h keeps one
// Content-Length.
func bodyLength(h http.Header, http11 bool) (int64, *framingError) {
	tes, cls := h["Transfer-Encoding"], h["Content-Length"]
	switch {
	case len(tes) > 0 && len(cls) > 0:
		return 0, &framingError{reason: "both Content-Length and Transfer-Encoding", ambiguous: true}
	case len(tes) > 0 && !http11:
		return 0, &framingError{reason: "Transfer-Encoding in an HTTP/1.0 message"}
	case len(tes) > 0:
		if len(tes) > 1 || !strings.EqualFold(tes[0], "chunked") {
			return 0, &framingError{reason: "unsupported Transfer-Encoding", unsupported: true}
		}
		return -1, nil
	case len(cls) == 0:
		return -2, nil
	}
	for _, v := range cls[1:] {
		if v != cls[0] {
			return 0, &framingError{reason: "conflicting Content-Length headers"}
		}
	}
	n, ok := parseLength(cls[0])
	if !ok {
		return 0, &framingError{reason: "malformed Content-Length"}
	}
	h["Content-Length"] = cls[:1]
	return n, nil
}

// parseLength reads a Content-Length: decimal digits only, as RFC 9110 8.6 says.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var f string
			f, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.Trim(f, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// bodyReader reads one message body off a connection's reader: exactly length bytes,
// chunks through their trailer section (length < 0), or, untilClose, everything up to
// the connection's end. done says it was read to its end, so that the connection can
// carry the next message.
type bodyReader struct {
	src        io.Reader // the chunk decoder, or the connection's reader
	br         *bufio.Reader
	remain     int64 // of a Content-Length body
	chunked    bool
	untilClose bool
	maxTrailer int
	// trailer receives a chunked body's trailer fields when not nil; otherwise they are
	// checked and dropped.
	trailer http.Header
	done    bool
	err     error
	// onFirstRead runs before the first read (a client's "Expect: 100-continue").
	onFirstRead func()
}

func newBodyReader(br *bufio.Reader, length int64, maxTrailer int) *bodyReader {
	b := &bodyReader{br: br, src: br, remain: length, maxTrailer: maxTrailer}
	if length < 0 {
		b.chunked = true
		b.src = &chunkedReader{br: br}
	}
	return b
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.onFirstRead != nil {
		b.onFirstRead()
		b.onFirstRead = nil
	}
	if b.err != nil {
		return 0, b.err
	}
	if !b.chunked && !b.untilClose {
		if b.remain == 0 {
			b.done, b.err = true, io.EOF
			return 0, io.EOF
		}
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
	}
	n, err := b.src.Read(p)
	b.remain -= int64(n)
	switch {
	case err == io.EOF && b.chunked:
		if terr := readTrailer(b.br, b.maxTrailer, b.trailer); terr != nil {
			err = terr
		} else {
			b.done = true
		}
	case err == io.EOF && b.untilClose:
		b.done = true
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	case err == nil && !b.chunked && !b.untilClose && b.remain == 0:
		b.done, err = true, io.EOF
	}
	b.err = err
	return n, err
}

func (b *bodyReader) Close() error { return nil }

// stuck says the connection cannot be read past what is left of this body: the body
// failed, or its client still waits for 100 Continue and may or may not send it.
func (b *bodyReader) stuck() bool { return !b.done && (b.err != nil || b.onFirstRead != nil) }

// chunkedReader decodes a chunked body (RFC 9112 7.1) up to its last chunk, as
// httputil.NewChunkedReader does, but reads chunk extensions strictly: a chunk line is 1
// to 16 hex digits then chunk extensions, *( BWS ";" BWS token [ BWS "=" BWS ( token /
// quoted-string ) ] ), through CRLF. A control character or a bare CR, a space inside a
// name or an unquoted value, a missing name or value fail the body. As Go's reader does,
// it takes spaces and tabs at the end of a line, refuses a space before the first ';'
// (Go reads it as part of the size), lines of 4096 bytes or more and, to bound what a
// sender can make it read for little data, more than 16 bytes of chunk lines per chunk
// beyond twice its data. Every body it reads whole, Go's reader reads the same; the
// trailer section is the caller's (readTrailer).
type chunkedReader struct {
	br       *bufio.Reader
	n        uint64 // unread bytes of the current chunk
	err      error
	checkEnd bool // the CRLF after a chunk's data is next
	lines    chunkLines
	crlf     [2]byte
}

var (
	errChunkLine        = errors.New("malformed chunk line")
	errChunkLineTooLong = errors.New("chunk line too long")
	errChunkEnd         = errors.New("malformed chunked encoding")
	errChunkOverhead    = errors.New("chunked encoding contains too much non-data")
)

// maxChunkLine bounds a chunk line, its CRLF not counted, as Go's reader does.
const maxChunkLine = 4096

func (cr *chunkedReader) Read(p []byte) (n int, err error) {
	for cr.err == nil {
		if cr.checkEnd {
			if n > 0 && cr.br.Buffered() < 2 {
				break // some data: return it rather than wait for more
			}
			if _, cr.err = io.ReadFull(cr.br, cr.crlf[:]); cr.err != nil {
				if cr.err == io.EOF {
					cr.err = io.ErrUnexpectedEOF
				}
				break
			}
			if cr.crlf != [2]byte{'\r', '\n'} {
				cr.err = errChunkEnd
				break
			}
			cr.checkEnd = false
		}
		if cr.n == 0 {
			if n > 0 && !cr.lineBuffered() {
				break // some data: do not wait for the next chunk line
			}
			cr.beginChunk()
			continue
		}
		if len(p) == 0 {
			break
		}
		q := p
		if uint64(len(q)) > cr.n {
			q = q[:cr.n]
		}
		var m int
		m, cr.err = cr.br.Read(q)
		n += m
		p = p[m:]
		cr.n -= uint64(m)
		if cr.n == 0 && cr.err == nil {
			cr.checkEnd = true
		} else if cr.err == io.EOF {
			cr.err = io.ErrUnexpectedEOF
		}
	}
	return n, cr.err
}

// lineBuffered says whether a whole chunk line is buffered already.
func (cr *chunkedReader) lineBuffered() bool {
	if n := cr.br.Buffered(); n > 0 {
		b, _ := cr.br.Peek(n)
		return bytes.IndexByte(b, '\n') >= 0
	}
	return false
}

// beginChunk reads a chunk line: the size of the next chunk, io.EOF for the last.
func (cr *chunkedReader) beginChunk() {
	line, err := cr.br.ReadSlice('\n')
	switch {
	case err == io.EOF:
		cr.err = io.ErrUnexpectedEOF
		return
	case err == bufio.ErrBufferFull:
		cr.err = errChunkLineTooLong
		return
	case err != nil:
		cr.err = err
		return
	}
	cr.n, cr.err = cr.lines.next(line)
}

// chunkLines reads the chunk lines of a body in turn (chunkedReader's rules), and keeps
// the count that bounds their bytes.
type chunkLines struct {
	excess int64 // chunk line bytes beyond what the data allows
}

// next reads a chunk line, as read through its first LF: the size of its chunk, io.EOF
// for the last chunk's, or what is wrong with it.
func (c *chunkLines) next(line []byte) (uint64, error) {
	// The line ends in CRLF, with no other CR (nor, since it ends at the first LF, LF).
	if i := bytes.IndexByte(line, '\r'); i < 0 || i != len(line)-2 {
		return 0, errChunkLine
	}
	line = line[:len(line)-2]
	if len(line) >= maxChunkLine {
		return 0, errChunkLineTooLong
	}
	c.excess += int64(len(line)) + 2
	size, ok := parseChunkLine(line)
	if !ok {
		return 0, errChunkLine
	}
	c.excess = max(c.excess-16-2*int64(size), 0)
	switch {
	case c.excess > 16<<10:
		return size, errChunkOverhead
	case size == 0:
		return 0, io.EOF
	}
	return size, nil
}

// parseChunkLine reads a chunk line without its CRLF: the chunk's size, and whether the
// line is well formed (see chunkedReader).
func parseChunkLine(line []byte) (size uint64, ok bool) {
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return size, i > 0 && validChunkExt(line[i:])
		}
		if i == 16 {
			return 0, false
		}
		size = size<<4 | uint64(d)
	}
	return size, i > 0
}

// validChunkExt says whether s, what follows the size on a chunk line (its trailing
// spaces dropped), is chunk extensions (RFC 9112 7.1.1): *( BWS ";" BWS ext-name
// [ BWS "=" BWS ext-val ] ), names tokens and values tokens or quoted strings. The first
// ';' follows the size at once.
func validChunkExt(s []byte) bool {
	for first := true; len(s) > 0; first = false {
		if !first {
			s = skipBWS(s)
		}
		if len(s) == 0 || s[0] != ';' {
			return false
		}
		s = skipBWS(s[1:])
		n := tokenLen(s)
		if n == 0 {
			return false
		}
		s = s[n:]
		if t := skipBWS(s); len(t) > 0 && t[0] == '=' {
			s = skipBWS(t[1:])
			if len(s) > 0 && s[0] == '"' {
				n = quotedStringLen(s)
			} else {
				n = tokenLen(s)
			}
			if n == 0 {
				return false
			}
			s = s[n:]
		}
	}
	return true
}

// skipBWS drops the spaces and tabs at the start of s.
func skipBWS(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

// tokenLen is the length of the token at the start of s.
func tokenLen(s []byte) int {
	n := 0
	for n < len(s) && tokenChars[s[n]] {
		n++
	}
	return n
}

// quotedStringLen is the length of the quoted-string (RFC 9110 5.6.4) at the start of s,
// or 0: between double quotes, spaces, tabs, visible characters and obs-text, any of
// them after a backslash (quoted-pair).
func quotedStringLen(s []byte) int {
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			i++
			if i == len(s) || !qdChar(s[i]) && s[i] != '"' && s[i] != '\\' {
				return 0
			}
		case !qdChar(c):
			return 0
		}
	}
	return 0
}

// qdChar says whether c may stand unescaped in a quoted string (qdtext).
func qdChar(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || 0x23 <= c && c <= 0x5b || 0x5d <= c && c != 0x7f
}

// errBadTrailer is a chunked body's trailer section that is malformed or too long.
var errBadTrailer = errors.New("malformed chunked trailer")

// readTrailer reads the trailer section after the last chunk, header lines through a
// blank line, into into (checked and dropped when into is nil).
func readTrailer(br *bufio.Reader, max int, into http.Header) error {
	var lines []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return errBadTrailer
		}
		end, err := trailerLine(len(lines), line, max)
		if err != nil {
			return err
		}
		if end {
			break
		}
		lines = append(lines, line...)
	}
	h, err := parseTrailer(lines)
	if err != nil {
		return err
	}
	if into != nil {
		for k, vs := range h {
			into[k] = vs
		}
	}
	return nil
}

// trailerLine checks a line of a trailer section, as read through its first LF, after
// have bytes of lines before it, against a section of at most max bytes. end says it is
// the blank line that ends the section (counted against max, not kept).
func trailerLine(have int, line []byte, max int) (end bool, err error) {
	if have+len(line) > max || len(line) < 2 || line[len(line)-2] != '\r' {
		// Trailer lines end in CRLF: readers differ on a bare LF there.
		return false, errBadTrailer
	}
	return len(line) == 2, nil
}

// parseTrailer parses the lines of a trailer section (its blank line left out): nil
// when there are none.
func parseTrailer(lines []byte) (http.Header, error) {
	if len(lines) == 0 {
		return nil, nil
	}
	h, err := parseHeader(string(lines))
	if err != nil {
		return nil, errBadTrailer
	}
	return h, nil
}
