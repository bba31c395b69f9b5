package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/policies"
	"github.com/dynogrid/dynogrid/router"
)

// forwardedProto is put in front of the example app: /proto answers with the
// X-Forwarded-Proto and X-Forwarded-Port the dyno got.
const forwardedProto = `
class ForwardedProto
  def initialize(app)
    @app = app
  end

  def call(env)
    return @app.call(env) unless env["PATH_INFO"] == "/proto"

    [200, { "content-type" => "text/plain" }, ["proto=#{env["HTTP_X_FORWARDED_PROTO"]} port=#{env["HTTP_X_FORWARDED_PORT"]}\n"]]
  end
end
use ForwardedProto
`

// clusterRouter is a dyno-router that a test runs beside the grid's, in cluster mode,
// ordering certificates from the grid's ACME server with an account key of its own.
type clusterRouter struct {
	id                 string
	addr, tlsAddr      string
	plainPort, tlsPort string
	log                string // its output
	cmd                *exec.Cmd
	exited             chan struct{}
}

func startClusterRouter(t *testing.T, g *devgrid.Grid, id string) *clusterRouter {
	t.Helper()
	port := harness.FreePorts(t, 3)
	dir := t.TempDir()
	r := &clusterRouter{id: id, addr: fmt.Sprintf("127.0.0.1:%d", port), tlsAddr: fmt.Sprintf("127.0.0.1:%d", port+1),
		log: filepath.Join(dir, "router.log"), exited: make(chan struct{}),
		plainPort: strconv.Itoa(port), tlsPort: strconv.Itoa(port + 1)}
	out, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tok := harness.Tokens(t, g)
	r.cmd = exec.Command(filepath.Join(harness.BinDir(t), "dyno-router"), "-cluster", "-id", id,
		"-listen", r.addr, "-tls-listen", r.tlsAddr, "-metrics-listen", fmt.Sprintf("127.0.0.1:%d", port+2),
		"-consul", g.Options.ConsulAddr(), "-nomad", "http://"+g.Options.NomadAddr(), "-domain", g.Options.RouterDomain,
		"-acme-directory", g.Options.ACMEDirectory(), "-acme-ca", g.Options.RouterCAFile(),
		"-acme-account-key", filepath.Join(dir, "acme-account-key.pem"))
	r.cmd.Env = append(os.Environ(), "CONSUL_HTTP_TOKEN="+tok.Consul[policies.ConsulCluster],
		"NOMAD_TOKEN="+tok.Nomad[policies.NomadRouter])
	r.cmd.Stdout, r.cmd.Stderr = out, out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.exited
		if t.Failed() {
			t.Logf("router %s's log:\n%s", id, devgrid.Tail(r.log, 60))
		}
	})
	return r
}

// logCount is how many lines of a log file hold all of parts.
func logCount(t *testing.T, path string, parts ...string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
lines:
	for _, l := range strings.Split(string(b), "\n") {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue lines
			}
		}
		n++
	}
	return n
}

// TestHTTPSACMEInCluster runs two routers in cluster mode, both with HTTPS and ACME: the
// grid's, which Pebble's HTTP-01 validations reach (Pebble's DNS answers 127.0.0.1, on
// that router's port), and one the test starts, which owns the app. The owner alone
// orders the app's certificate; the other answers the challenge from the app's
// Variable; both then serve the certificate over HTTP/1.1 and HTTP/2 without a restart.
// HTTPS requests to the other router reach the dyno through the owner with
// X-Forwarded-Proto https, which a client cannot forge either way; the redirect to
// HTTPS is the same at both routers. Then the owner stops, and the other router, owner
// now, renews the certificate with its own ACME account.
func TestHTTPSACMEInCluster(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed: %v", err)
	}
	const validity = 120 * time.Second // renewed with a third left: after 80 s
	const gridID = "edge-grid"
	g := harness.Grid(t, harness.WithRouter(t), harness.WithACME(t, validity),
		func(o *devgrid.Options) { o.RouterClusterID = gridID })
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	ownerID := gridID
	for i := 0; ownerID == gridID; i++ {
		if id := fmt.Sprintf("edge-%d", i); router.Owner([]string{gridID, id}, "hello") == id {
			ownerID = id
		}
	}
	owner := startClusterRouter(t, g, ownerID)
	other := &clusterRouter{id: gridID, addr: g.Options.RouterAddr(), tlsAddr: g.Options.RouterTLSAddr(),
		log: filepath.Join(g.Options.DataDir, "router.log")}
	_, other.plainPort, _ = net.SplitHostPort(other.addr)
	_, other.tlsPort, _ = net.SplitHostPort(other.tlsAddr)
	testutil.WaitFor(t, 30*time.Second, "both routers members of the cluster", func() error {
		keys, _, err := consul.KV().Keys("dynogrid/router/members/", "", nil)
		if err != nil || len(keys) != 2 {
			return fmt.Errorf("members %v, %v", keys, err)
		}
		return nil
	})

	dir := copyApp(t)
	writeSpec(t, dir, strings.Replace(webSpec("hello", ""), "count        = 2", "count        = 1", 1))
	ru := filepath.Join(dir, "config.ru")
	src, err := os.ReadFile(ru)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ru, []byte(strings.Replace(string(src), "use QuietHealthLogger", forwardedProto+"use QuietHealthLogger", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := newCLI(t, g, "hello")
	admin.must("deploy", dir)
	passingDynos(t, consul, "hello", 1, time.Minute)

	rootFile, pool := acmeRoot(t, g)

	// Both routers serve the ordered certificate: curl over HTTP/2 checks it against
	// Pebble's root, through each router, a client's forged X-Forwarded-Proto ignored.
	for _, r := range []*clusterRouter{owner, other} {
		url := "https://hello.localhost:" + r.tlsPort + "/proto"
		testutil.WaitFor(t, 90*time.Second, "curl --http2 reaching the app through "+r.id+" with a certificate from the ACME server", func() error {
			cmd := exec.Command("curl", "-sS", "--http2", "--max-time", "10", "--cacert", rootFile, "-H", "X-Forwarded-Proto: http",
				"--resolve", "hello.localhost:"+r.tlsPort+":127.0.0.1", "-w", "\nhttp_version=%{http_version}", url)
			b, err := cmd.CombinedOutput()
			if want := "proto=https port=" + r.tlsPort + "\n"; err != nil || !strings.Contains(string(b), "http_version=2") || !strings.HasPrefix(string(b), want) {
				return fmt.Errorf("curl: %v\n%s", err, b)
			}
			return nil
		})
	}
	serial := servedSerial(t, owner.tlsAddr, "hello.localhost", pool)
	if s := servedSerial(t, other.tlsAddr, "hello.localhost", pool); s != serial {
		t.Errorf("the routers serve serials %s (owner) and %s", serial, s)
	}
	// The owner alone ordered it; the ACME server reached the other router only, which
	// answered the challenge.
	if n := logCount(t, owner.log, "ordering a certificate over ACME", "host=hello.localhost"); n != 1 {
		t.Errorf("the owner started %d orders for hello.localhost, want 1", n)
	}
	if n := logCount(t, other.log, "ordering a certificate over ACME"); n != 0 {
		t.Errorf("the router that does not own the app started %d orders, want 0", n)
	}
	testutil.WaitFor(t, 10*time.Second, "the challenge answered by the router that does not own the app", func() error {
		if logCount(t, other.log, `desc="ACME challenge answered"`, "host=hello.localhost", "status=200") == 0 {
			return fmt.Errorf("no challenge answered:\n%s", devgrid.Tail(other.log, 40))
		}
		return nil
	})
	if n := logCount(t, owner.log, `desc="ACME challenge answered"`); n != 0 {
		t.Errorf("the ACME server reached the owner %d times, want its validations at the other router only", n)
	}

	// HTTP/1.1 and HTTP/2 from Go: each router's TLS listener, a forged header each time.
	for _, r := range []*clusterRouter{owner, other} {
		for _, h2 := range []bool{false, true} {
			for _, forged := range []string{"http", "https", ""} {
				resp, body := httpsGet(t, r.tlsAddr, pool, h2, "https://hello.localhost:"+r.tlsPort+"/proto", forged)
				wantProto := "HTTP/1.1"
				if h2 {
					wantProto = "HTTP/2.0"
				}
				if want := "proto=https port=" + r.tlsPort + "\n"; resp.StatusCode != 200 || body != want || resp.Proto != wantProto {
					t.Errorf("%s over %s, X-Forwarded-Proto %q sent: %s %d %q; want %s 200 %q", r.id, wantProto, forged, resp.Proto, resp.StatusCode, body, wantProto, want)
				}
			}
		}
	}
	// Plain HTTP with a forged https: the dyno sees http.
	for _, r := range []*clusterRouter{owner, other} {
		resp, body := plainGet(t, r.addr, "hello.localhost", "/proto", http.Header{"X-Forwarded-Proto": {"https"}})
		if want := "proto=http port=" + r.plainPort + "\n"; resp.StatusCode != 200 || body != want {
			t.Errorf("%s over plain HTTP, X-Forwarded-Proto https sent: %d %q, want %q", r.id, resp.StatusCode, body, want)
		}
	}
	// The other router's requests went through the owner (a request's line is logged
	// once its response is sent: a moment after the client has it).
	testutil.WaitFor(t, 10*time.Second, "the other router's requests logged as forwarded to the owner", func() error {
		if n := logCount(t, other.log, `path="/proto"`, "dyno=router:"+ownerID, "status=200"); n < 8 {
			return fmt.Errorf("%d requests for /proto logged as forwarded, want 8 or more:\n%s", n, devgrid.Tail(other.log, 20))
		}
		return nil
	})

	// Redirect to HTTPS: the same answer from both routers; HTTPS requests through the
	// other router are not redirected by the owner.
	admin.must("certs:redirect", "on")
	for _, r := range []*clusterRouter{owner, other} {
		testutil.WaitFor(t, 30*time.Second, r.id+" redirecting plain HTTP", func() error {
			for method, code := range map[string]int{http.MethodGet: 301, http.MethodPost: 308} {
				req, _ := http.NewRequest(method, "http://"+r.addr+"/x?y=1", nil)
				req.Host = "hello.localhost"
				req.Header.Set("X-Forwarded-Proto", "https")
				resp, err := noFollow.Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != code || resp.Header.Get("Location") != "https://hello.localhost/x?y=1" {
					return fmt.Errorf("%s: got %d %q", method, resp.StatusCode, resp.Header.Get("Location"))
				}
			}
			return nil
		})
		for _, h2 := range []bool{false, true} {
			if resp, body := httpsGet(t, r.tlsAddr, pool, h2, "https://hello.localhost:"+r.tlsPort+"/proto", "http"); resp.StatusCode != 200 || body != "proto=https port="+r.tlsPort+"\n" {
				t.Errorf("%s over HTTPS (h2 %v) with the redirect on: %d %q", r.id, h2, resp.StatusCode, body)
			}
		}
	}

	// The owner stops; the other router owns the app now and renews the certificate
	// with its own ACME account (its own key), which Pebble takes.
	ownKey, err := os.ReadFile(filepath.Join(filepath.Dir(owner.log), "acme-account-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := os.ReadFile(filepath.Join(filepath.Dir(g.Options.RouterCAFile()), "acme-account-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if string(ownKey) == string(otherKey) {
		t.Fatalf("the two routers have one ACME account key")
	}
	if n := logCount(t, owner.log, "ordering a certificate over ACME"); n != 1 {
		t.Fatalf("the owner started %d orders before it stopped, want 1: the test ran past the renewal", n)
	}
	owner.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-owner.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("router %s still runs 30 s after SIGTERM", owner.id)
	}
	testutil.WaitFor(t, validity, "the router left renewing the certificate", func() error {
		if s := servedSerial(t, other.tlsAddr, "hello.localhost", pool); s == serial {
			return fmt.Errorf("still serving serial %s", s)
		}
		return nil
	})
	if n := logCount(t, other.log, "ordered a certificate over ACME: app=hello host=hello.localhost"); n != 1 {
		t.Errorf("the router left logged %d orders of hello.localhost, want 1:\n%s", n, devgrid.Tail(other.log, 40))
	}
	if resp, body := httpsGet(t, other.tlsAddr, pool, true, "https://hello.localhost:"+other.tlsPort+"/proto", ""); resp.StatusCode != 200 || body != "proto=https port="+other.tlsPort+"\n" {
		t.Errorf("the router left, over HTTP/2 with the renewed certificate: %d %q", resp.StatusCode, body)
	}
}

// httpsGet sends GET url to the HTTPS listener at addr, over HTTP/2 when h2 and
// HTTP/1.1 otherwise, checking the certificate against roots, with X-Forwarded-Proto
// proto when not empty; it returns the response and its body.
func httpsGet(t *testing.T, addr string, roots *x509.CertPool, h2 bool, url, proto string) (*http.Response, string) {
	t.Helper()
	var protos http.Protocols
	protos.SetHTTP1(!h2)
	protos.SetHTTP2(h2)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, Protocols: &protos,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if proto != "" {
		req.Header.Set("X-Forwarded-Proto", proto)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second, Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s at %s: %v", url, addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// plainGet sends GET path to the router at addr over plain HTTP with Host host and the
// headers given.
func plainGet(t *testing.T, addr, host, path string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatalf("GET %s at %s: %v", path, addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
