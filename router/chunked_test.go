package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// TestMalformedChunkExtensionRefused: a client's chunked body whose chunk extension
// holds a control character is refused (400) and reaches no dyno; a dyno's chunked
// response with one is cut short for the client (which sees the truncation, not a
// complete body) and logged H18.
func TestMalformedChunkExtensionRefused(t *testing.T) {
	t.Parallel()
	b, seen := recordingBackend(t)
	tr := startRouter(t, nil)
	tr.SetApp("ce", []Instance{b.instance("web.1")})
	for _, chunks := range []string{
		"3;\x01\r\nabc\r\n0\r\n\r\n",
		"3;a=\"\x7f\"\r\nabc\r\n0\r\n\r\n",
		"3\r\nabc\r\n0;a b\r\n\r\n",
	} {
		s, body := rawRequest(t, tr.Addr(), "POST /ext HTTP/1.1\r\nHost: ce.localhost\r\nTransfer-Encoding: chunked\r\n\r\n"+chunks)
		if s != 400 {
			t.Errorf("chunks %q: status %d %q, want 400", chunks, s, body)
		}
	}
	if s, _ := rawRequest(t, tr.Addr(), "POST /ok HTTP/1.1\r\nHost: ce.localhost\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"3;a=b;c=\"d e\"\r\nabc\r\n0\r\n\r\n"); s != 200 {
		t.Errorf("well-formed extensions: status %d, want 200", s)
	}
	if got := seen(); len(got) != 1 || got[0] != "POST /ok=abc" {
		t.Errorf("the dyno saw %q, want the one well-formed request", got)
	}

	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;\x01\r\nabc\r\n0\r\n\r\n")
		io.Copy(io.Discard, br) // until the router closes the connection
	})
	tr.SetApp("dyno", []Instance{rawInstance(addr, "web.1")})
	c, err := net.Dial("tcp", tr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /resp HTTP/1.1\r\nHost: dyno.localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("the client got a complete response %d %q from a malformed chunked one", resp.StatusCode, body)
	}
	waitFor(t, "H18 logged", func() bool { return tr.logHas("code=H18", `path="/resp"`) })
}
