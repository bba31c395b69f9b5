package http1

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// TestResponseHeaderLinesSanitised: whatever a handler puts in the header map, one
// value is one header line.
func TestResponseHeaderLinesSanitised(t *testing.T) {
	t.Parallel()
	h := http.Header{
		"X-A":          {"a\r\nInjected: yes", "b\rInjected: yes", "c\nInjected: yes"},
		"Bad Name":     {"v"},
		"X-B\r\nX-Inj": {"v"},
		"":             {"v"},
	}
	out := string(appendHeaderLines(nil, h)) + "\r\n"
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\n"+out)), nil)
	if err != nil {
		t.Fatalf("header lines %q do not parse: %v", out, err)
	}
	if len(resp.Header) != 1 || len(resp.Header["X-A"]) != 3 {
		t.Fatalf("header lines %q read as %v", out, resp.Header)
	}
}
