package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// clientForwardingHeaders are forwarding headers the router does not set, which apps read
// as how the client reached it (Rack 3 puts Forwarded before X-Forwarded-Proto, Rack 2
// and 3 read X-Forwarded-Ssl: on as https), with '_' aliases that Rack servers read as
// the same headers.
var clientForwardingHeaders = [][2]string{
	{"Forwarded", "for=6.6.6.6;proto=https;host=evil.com"},
	{"X-Forwarded-Ssl", "on"},
	{"X-Forwarded-Scheme", "https"},
	{"X-Forwarded-Host", "evil.com"},
	{"X-Real-Ip", "6.6.6.6"},
	{"Front-End-Https", "on"},
	{"X-Url-Scheme", "https"},
	{"X_Forwarded_Ssl", "on"},
	{"x_forwarded_scheme", "https"},
	{"X_Forwarded_Host", "evil.com"},
	{"X_REAL_IP", "6.6.6.6"},
	{"Front_End_Https", "on"},
	{"X_Url_Scheme", "https"},
}

// droppedForwarding says which of h's names read as a client forwarding header that
// must not reach a dyno, '_' taken for '-'.
func droppedForwarding(h http.Header) []string {
	var got []string
	for k := range h {
		n := http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
		for _, f := range clientForwardingHeaders {
			if n == f[0] {
				got = append(got, k+": "+strings.Join(h[k], ", "))
				break
			}
		}
	}
	return got
}

// TestClientForwardingHeadersDropped: a client's Forwarded, X-Forwarded-Ssl,
// -Scheme and -Host, X-Real-Ip, Front-End-Https and X-Url-Scheme (and their '_' aliases)
// never reach a dyno, over plain HTTP/1.1, HTTP/1.1 over TLS and HTTP/2: the router's
// X-Forwarded-Proto, -For and -Port are the only word on how the client came. A request
// a peer router forwarded keeps that router's X-Forwarded-* and loses these too (no
// router sets them).
func TestClientForwardingHeadersDropped(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		io.WriteString(w, "ok")
	})
	tr := startTLSRouter(t, nil)
	tr.setCluster(&cluster{id: "me", members: []string{"peer"}, addrs: map[string]string{"peer": "127.0.0.1:1"},
		keys: map[string]string{"peer": peerKey}})
	tr.SetApp("fwd", []Instance{b.instance("web.1")})

	var head strings.Builder
	hdr := http.Header{"X-Custom": {"kept"}}
	for _, f := range clientForwardingHeaders {
		head.WriteString(f[0] + ": " + f[1] + "\r\n")
		hdr[f[0]] = []string{f[1]}
	}
	raw := func(extra string) http.Header {
		t.Helper()
		c, err := net.Dial("tcp", tr.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: fwd.localhost\r\nX-Custom: kept\r\n"+head.String()+extra+"\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp, err)
		}
		return <-seen
	}
	overTLS := func(h2 bool) http.Header {
		t.Helper()
		resp, _ := get(t, tr.client(h2), "https://fwd.localhost/", hdr)
		if resp.StatusCode != 200 || (resp.ProtoMajor == 2) != h2 {
			t.Fatalf("over TLS (h2 %v): %s %s", h2, resp.Proto, resp.Status)
		}
		return <-seen
	}
	for _, tc := range []struct {
		name       string
		send       func() http.Header
		proto, fwd string
	}{
		{"HTTP/1.1", func() http.Header { return raw("") }, "http", "127.0.0.1"},
		{"HTTP/1.1 over TLS", func() http.Header { return overTLS(false) }, "https", "127.0.0.1"},
		{"HTTP/2", func() http.Header { return overTLS(true) }, "https", "127.0.0.1"},
		{"forwarded by a peer", func() http.Header {
			return raw(HopHeader + ": peer\r\n" + PeerKeyHeader + ": " + peerKey + "\r\n" +
				"X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n")
		}, "https", "10.0.0.1"},
	} {
		h := tc.send()
		if got := droppedForwarding(h); len(got) > 0 {
			t.Errorf("%s: the dyno got the client's %q", tc.name, got)
		}
		if h.Get("X-Forwarded-Proto") != tc.proto || h.Get("X-Forwarded-For") != tc.fwd {
			t.Errorf("%s: the dyno got X-Forwarded-Proto %q and -For %q, want %q and %q", tc.name,
				h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-For"), tc.proto, tc.fwd)
		}
		if h.Get("X-Custom") != "kept" {
			t.Errorf("%s: the dyno did not get X-Custom: %v", tc.name, h)
		}
	}
}

// TestWriteHeadDropsClientForwardingHeaders: the request head the router writes to a
// dyno carries none of the client's forwarding headers, by name or '_' alias, and its
// own X-Forwarded-Proto.
func TestWriteHeadDropsClientForwardingHeaders(t *testing.T) {
	t.Parallel()
	req := &http.Request{Method: "GET", RequestURI: "/", Host: "fwd.localhost", Header: http.Header{"X-Custom": {"kept"}}}
	for _, f := range clientForwardingHeaders {
		req.Header[f[0]] = []string{f[1]}
	}
	ob := &outbound{req: req, requestID: "id", fwdFor: "1.2.3.4", proto: "http", port: "80", start: time.Now()}
	var sb strings.Builder
	ob.writeHead(&sb)
	resp, err := http.ReadRequest(bufio.NewReader(strings.NewReader(sb.String())))
	if err != nil {
		t.Fatalf("head %q: %v", sb.String(), err)
	}
	if got := droppedForwarding(resp.Header); len(got) > 0 {
		t.Errorf("head %q carries %q", sb.String(), got)
	}
	if resp.Header.Get("X-Forwarded-Proto") != "http" || resp.Header.Get("X-Custom") != "kept" {
		t.Errorf("head %q", sb.String())
	}
}
