package router

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router/certapi"
)

// tlsRouter is a router with an HTTPS listener whose default certificate covers
// *.localhost, from ca.
type tlsRouter struct {
	*testRouter
	ca *testutil.CA
}

func startTLSRouter(t *testing.T, mod func(*Config)) *tlsRouter {
	t.Helper()
	ca := testutil.NewCA(t)
	cert, key := ca.IssueNow(t, "*.localhost")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	tr := startRouter(t, func(c *Config) {
		c.TLSListener = listen(t)
		c.TLSCertFile, c.TLSKeyFile = certFile, keyFile
		if mod != nil {
			mod(c)
		}
	})
	return &tlsRouter{testRouter: tr, ca: ca}
}

// setAppHTTPS gives app certificates (PEM pairs) and its redirect setting, as if read
// from Nomad.
func (tr *tlsRouter) setAppHTTPS(t *testing.T, app string, redirect bool, pairs ...[2][]byte) {
	t.Helper()
	ah := &appHTTPS{redirect: redirect}
	for _, p := range pairs {
		c, err := certapi.Parse(p[0], p[1], time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ah.certs = append(ah.certs, c)
	}
	m := map[string]*appHTTPS{app: ah}
	if old := tr.certs.apps.Load(); old != nil {
		for k, v := range *old {
			if k != app {
				m[k] = v
			}
		}
	}
	tr.certs.apps.Store(&m)
}

// client is an HTTPS client of the router that sends every request to its HTTPS
// listener, whatever the URL's host, with that host as the server name; h2 picks HTTP/2.
func (tr *tlsRouter) client(h2 bool) *http.Client {
	cfg := &tls.Config{RootCAs: tr.ca.Pool}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", tr.TLSAddr())
	}
	var protos http.Protocols
	if h2 {
		protos.SetHTTP2(true)
	} else {
		protos.SetHTTP1(true)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DialContext: dial, Protocols: &protos},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, url string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestHTTPSPicksCertificateByServerName(t *testing.T) {
	tr := startTLSRouter(t, nil)
	seen := make(chan http.Header, 10)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		io.WriteString(w, "proto="+r.Proto)
	})
	in := b.instance("web.1")
	in.Domains = []string{"www.shop.test"}
	tr.SetApp("shop", []Instance{in})
	other := newBackend(t, nil)
	tr.SetApp("other", []Instance{other.instance("web.1")})
	shopCert, shopKey := tr.ca.IssueNow(t, "www.shop.test")
	tr.setAppHTTPS(t, "shop", false, [2][]byte{shopCert, shopKey})
	// Another app's certificate for the same name is never served for shop's host.
	evilCert, evilKey := tr.ca.IssueNow(t, "www.shop.test", "other.localhost")
	tr.setAppHTTPS(t, "other", false, [2][]byte{evilCert, evilKey})
	_, port, _ := net.SplitHostPort(tr.TLSAddr())

	for _, h2 := range []bool{false, true} {
		c := tr.client(h2)
		wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]
		for host, wantName := range map[string]string{"www.shop.test": "www.shop.test", "shop.localhost": "*.localhost"} {
			resp, body := get(t, c, "https://"+host+"/", http.Header{"X-Forwarded-Proto": {"http"}, "X-Forwarded-Port": {"1"}})
			if resp.StatusCode != 200 || resp.Proto != wantProto {
				t.Fatalf("%s over %s: %s %s %q", host, wantProto, resp.Proto, resp.Status, body)
			}
			if got := resp.TLS.PeerCertificates[0].DNSNames[0]; got != wantName {
				t.Errorf("%s: served the certificate of %s, want %s", host, got, wantName)
			}
			if resp.TLS.Version < tls.VersionTLS12 {
				t.Errorf("%s: TLS version %x", host, resp.TLS.Version)
			}
			h := <-seen
			if h.Get("X-Forwarded-Proto") != "https" || h.Get("X-Forwarded-Port") != port {
				t.Errorf("%s over %s: the dyno saw X-Forwarded-Proto %q, -Port %q; want https, %s (the client's own are never trusted)",
					host, wantProto, h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Port"), port)
			}
			if body != "proto=HTTP/1.1" {
				t.Errorf("%s over %s: the dyno got %q, want HTTP/1.1", host, wantProto, body)
			}
		}
	}
	// A client claiming https over plain HTTP is not believed.
	_, _ = tr.do(t, http.MethodGet, "shop.localhost", "/", nil, http.Header{"X-Forwarded-Proto": {"https"}})
	if h := <-seen; h.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("plain HTTP with a client's X-Forwarded-Proto https: the dyno saw %q", h.Get("X-Forwarded-Proto"))
	}
}

// TestHTTPSNeverServesACertificateForADomainTheAppDoesNotOwn: a certificate stored in
// app hello's namespace for hello.evil.com (and *.evil.com) is never served for
// hello.evil.com, whether that name routes nowhere, to another app, or is named by
// hello and another app at once (which, at a router with no record of domain holders,
// routes it to neither; with one, to the app that named it first).
func TestHTTPSNeverServesACertificateForADomainTheAppDoesNotOwn(t *testing.T) {
	tr := startTLSRouter(t, nil)
	b := newBackend(t, nil)
	tr.SetApp("hello", []Instance{b.instance("web.1")})
	evilCert, evilKey := tr.ca.IssueNow(t, "hello.evil.com", "*.evil.com")
	tr.setAppHTTPS(t, "hello", false, [2][]byte{evilCert, evilKey})
	served := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", tr.TLSAddr(), &tls.Config{ServerName: "hello.evil.com", InsecureSkipVerify: true}) //nolint:gosec // the test looks at which certificate is served
		if err != nil {
			return "no certificate: " + err.Error()
		}
		defer c.Close()
		return strings.Join(c.ConnectionState().PeerCertificates[0].DNSNames, ",")
	}
	check := func(when string) {
		t.Helper()
		if got := served(); strings.Contains(got, "evil.com") {
			t.Errorf("%s: hello's certificate (%s) was served for hello.evil.com", when, got)
		}
	}
	check("hello.evil.com routing nowhere")

	other := newBackend(t, nil)
	in := other.instance("web.1")
	in.Domains = []string{"hello.evil.com"}
	tr.SetApp("evil", []Instance{in})
	check("hello.evil.com a custom domain of app evil")

	both := b.instance("web.1")
	both.Domains = []string{"hello.evil.com"}
	tr.SetApp("hello", []Instance{both})
	check("hello.evil.com named by hello and evil")

	// Once hello alone names it (and so routes it), hello's certificate is served.
	tr.SetApp("evil", []Instance{other.instance("web.1")})
	if got := served(); got != "hello.evil.com,*.evil.com" {
		t.Errorf("hello.evil.com named by hello alone: served %q, want hello's certificate", got)
	}
}

func TestHTTPSRefusesOldProtocolsAndCiphers(t *testing.T) {
	ml := listen(t)
	tr := startTLSRouter(t, func(c *Config) { c.MetricsListener = ml })
	for name, cfg := range map[string]*tls.Config{
		"TLS 1.1":      {MaxVersion: tls.VersionTLS11},
		"TLS 1.0":      {MaxVersion: tls.VersionTLS10},
		"CBC cipher":   {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}},
		"RSA exchange": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}},
	} {
		cfg.RootCAs, cfg.ServerName = tr.ca.Pool, "shop.localhost"
		c, err := tls.Dial("tcp", tr.TLSAddr(), cfg)
		if err == nil {
			c.Close()
			t.Errorf("%s: handshake succeeded", name)
		}
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c, err := tls.Dial("tcp", tr.TLSAddr(), &tls.Config{MaxVersion: v, RootCAs: tr.ca.Pool, ServerName: "shop.localhost"})
		if err != nil {
			t.Errorf("version %x: %v", v, err)
			continue
		}
		c.Close()
	}
	waitFor(t, "failed handshakes counted", func() bool {
		return strings.Contains(scrape(t, ml.Addr().String()), "dyno_router_tls_handshake_failures_total 4")
	})
}

func TestHTTPSNoCertificateForUnknownName(t *testing.T) {
	tr := startTLSRouter(t, nil)
	_, err := tls.Dial("tcp", tr.TLSAddr(), &tls.Config{RootCAs: tr.ca.Pool, ServerName: "www.elsewhere.test"})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a name no certificate covers: %v, want a certificate error (the default one is for *.localhost)", err)
	}
}

var noRedirect = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestRedirectToHTTPS(t *testing.T) {
	tr := startTLSRouter(t, nil)
	b := newBackend(t, nil)
	tr.SetApp("shop", []Instance{b.instance("web.1")})
	tr.SetApp("plain", []Instance{b.instance("web.1")})
	tr.setAppHTTPS(t, "shop", true)
	_, port, _ := net.SplitHostPort(tr.TLSAddr())
	for _, tc := range []struct {
		method, host, want string
		status             int
	}{
		{"GET", "shop.localhost", "https://shop.localhost/a?b=c", 301},
		{"HEAD", "shop.localhost:8080", "https://shop.localhost:" + port + "/a?b=c", 301},
		{"POST", "shop.localhost", "https://shop.localhost/a?b=c", 308},
	} {
		req, _ := http.NewRequest(tc.method, tr.url+"/a?b=c", nil)
		req.Host = tc.host
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.want {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.host, resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.want)
		}
	}
	if b.served.Load() != 0 {
		t.Errorf("the dyno got %d redirected requests", b.served.Load())
	}
	// Over HTTPS, and for an app that did not ask, requests reach the dyno.
	if resp, _ := get(t, tr.client(false), "https://shop.localhost/", nil); resp.StatusCode != 200 {
		t.Errorf("HTTPS request of a redirecting app: %s", resp.Status)
	}
	if resp, _ := tr.do(t, "GET", "plain.localhost", "/", nil, nil); resp.StatusCode != 200 {
		t.Errorf("plain HTTP of an app that did not ask for redirects: %s", resp.Status)
	}
	if !tr.logHas("status=301", `desc="Redirect to HTTPS"`) {
		t.Errorf("no access line for the redirect:\n%s", tr.logs)
	}
}
