package http1

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// goodChunkLines and badChunkLines are chunk lines (without CRLF) for a chunk of 3 bytes:
// well formed ones, which the router reads as Go does, and malformed ones, which fail the
// body.
var (
	goodChunkLines = []string{
		"3",
		"03",
		"3;a",
		"3;a=b",
		"3;a=b;c;d=e",
		"3; a = b ;\tc\t=\td",
		`3;a="quoted ; value"`,
		`3;a="escaped \" and \\ and \; "`,
		"3;a=\"tab\there\"",
		"3;a=\"obs-text \xe9\"",
		"3;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~",
		"3 ",    // trailing spaces and tabs: Go takes them, and so does the router
		"3;a\t", // (RFC 9112 has none after a size or an extension)
	}
	badChunkLines = []string{
		"3;\x01",
		"3;a\x01",
		"3;a=\x01",
		"3;a=b\x01",
		"3;a=\"\x01\"",
		"3;a=\"b\x7f\"",
		"3;a\x7f",
		"3;\x00",
		"3;a=\"\\\x01\"",
		"3;a\rb",
		"3\r;a",
		"3;",
		"3;;a",
		"3;=b",
		"3;a=",
		"3;a=;b",
		"3;a b",
		"3;a=b c",
		"3;a=\"b",
		"3;a=\"b\\\"",
		"3;a=\"b\"c",
		"3;a=b\"c\"",
		"3;a(b)",
		"3;a=b,c",
		"3 ;a", // Go reads "3 " as the size, and refuses it
		"3\t;a",
		"3a;a", // a size of 0x3a: the body is short
		"3,a",
		"3x",
	}
)

// TestChunkExtensionsChecked: chunk extensions that are not RFC 9112's (token names,
// token or quoted-string values, BWS around ';' and '='), control characters and bare CRs
// above all, fail a client's chunked body (which the router answers 400) and a dyno's
// chunked response alike, whether in the first chunk's line, a later one's or the last
// chunk's. Well-formed ones are read as Go reads them.
func TestChunkExtensionsChecked(t *testing.T) {
	t.Parallel()
	bodies := func(line string) []string {
		return []string{
			line + "\r\nabc\r\n0\r\n\r\n",
			"3\r\nabc\r\n" + line + "\r\nabc\r\n0\r\n\r\n",
			strings.Replace(line, "3", "0", 1) + "\r\n\r\n",
		}
	}
	// reads reads a chunked body with the router's reader, as a request's and as a
	// response's.
	reads := func(t *testing.T, body string) (request, response string, rerr, perr error) {
		t.Helper()
		p, err := readOurs(bufio.NewReader(strings.NewReader(
			"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body)))
		if p != nil {
			request = string(p.body)
		}
		rerr = err
		resp, err := ReadResponse(bufio.NewReader(strings.NewReader(
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+body)), http.MethodGet)
		if err != nil {
			t.Fatalf("%q: response head: %v", body, err)
		}
		b, err := io.ReadAll(resp.Body)
		response, perr = string(b), err
		return
	}
	for _, line := range goodChunkLines {
		for _, body := range bodies(line) {
			want, err := io.ReadAll(httputil.NewChunkedReader(strings.NewReader(body)))
			if err != nil {
				t.Fatalf("%q: Go refuses: %v", body, err)
			}
			req, resp, rerr, perr := reads(t, body)
			if rerr != nil || req != string(want) {
				t.Errorf("request body %q: read %q, %v; want %q", body, req, rerr, want)
			}
			if perr != nil || resp != string(want) {
				t.Errorf("response body %q: read %q, %v; want %q", body, resp, perr, want)
			}
		}
	}
	for _, line := range badChunkLines {
		for _, body := range bodies(line) {
			_, _, rerr, perr := reads(t, body)
			if rerr == nil {
				t.Errorf("request body %q read as complete", body)
			}
			if perr == nil {
				t.Errorf("response body %q read as complete", body)
			}
		}
	}
}

// TestMalformedChunkExtensionIsABadRequest: a client's body with a malformed chunk
// extension is refused as the client's fault (400), not as a client that went away.
func TestMalformedChunkExtensionIsABadRequest(t *testing.T) {
	t.Parallel()
	raw := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;\x01\r\nabc\r\n0\r\n\r\n"
	_, err := readOurs(bufio.NewReader(strings.NewReader(raw)))
	if err == nil {
		t.Fatal("body read as complete")
	}
	if strings.Contains(err.Error(), io.ErrUnexpectedEOF.Error()) {
		t.Errorf("body failed with %v: it reads as a client that went away (H27), not a bad request", err)
	}
}
