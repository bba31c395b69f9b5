package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/policies"
	"github.com/dynogrid/dynogrid/router/certapi"
)

// TestHTTPSCustomDomainCertificate deploys the example app with a custom domain, adds a
// certificate for it with `dyno certs:add` (the app's deploy token), and has curl reach
// the app over HTTP/2 with that certificate; then it checks that bad certificates are
// refused at add time, that a bad one stored behind the CLI's back leaves the previous
// one serving, that a new one is picked up without a restart, that certs:remove and
// certs:redirect act, and that the router's token reads nothing else of the app.
func TestHTTPSCustomDomainCertificate(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed: %v", err)
	}
	g, _, admin := routedApp(t, "hello", `  domains  = ["www.hello.test"]`)
	token := strings.TrimSpace(admin.must("apps:token"))
	app := newCLI(t, g, "hello")
	app.base = tokenArgs(app.base, token)

	ca := testutil.NewCA(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", ca.PEM)
	cert1, key1 := ca.IssueNow(t, "www.hello.test")
	out := app.must("certs:add", write("cert1.pem", cert1), write("key1.pem", key1))
	if !strings.Contains(out, "Added the certificate for www.hello.test to hello") {
		t.Errorf("certs:add printed %q", out)
	}

	// curl over HTTP/2, checking the certificate against the test CA.
	tlsAddr := g.Options.RouterTLSAddr()
	_, port, _ := net.SplitHostPort(tlsAddr)
	url := "https://www.hello.test:" + port + "/"
	testutil.WaitFor(t, 30*time.Second, "curl --http2 reaching the app on its custom domain", func() error {
		cmd := exec.Command("curl", "-sS", "--http2", "--max-time", "10", "--cacert", caFile,
			"--resolve", "www.hello.test:"+port+":127.0.0.1", "-w", "\nhttp_version=%{http_version}", url)
		b, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(b), "http_version=2") || !strings.Contains(string(b), "Hello") {
			return fmt.Errorf("curl: %v\n%s", err, b)
		}
		return nil
	})
	serial1 := servedSerial(t, tlsAddr, "www.hello.test", ca.Pool)

	// Bad certificates and keys are refused at add time, each with its reason.
	_, otherKey := ca.IssueNow(t, "www.hello.test")
	expired, expiredKey := ca.Issue(t, []string{"www.hello.test"}, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	elsewhere, elsewhereKey := ca.IssueNow(t, "www.other.test")
	evil, evilKey := ca.IssueNow(t, "hello.evil.test")
	big := append([]byte(strings.Repeat("#", certapi.MaxPEMBytes)), cert1...)
	for name, tc := range map[string]struct {
		cert, key []byte
		args      []string
		want      string
	}{
		"mismatch":     {cert1, otherKey, nil, "the key is not the certificate's"},
		"expired":      {expired, expiredKey, nil, "expired at"},
		"wrong domain": {elsewhere, elsewhereKey, nil, "www.other.test is not a domain of hello"},
		"app name, another domain": {evil, evilKey, []string{"--router-domain", "localhost"},
			"hello.evil.test is not a domain of hello: a certificate may be added for hello.localhost or one of the app's custom domains (www.hello.test)"},
		"router domain not known": {evil, evilKey, nil, "the grid's router domain is not known"},
		"bad --router-domain":     {cert1, key1, []string{"--router-domain", "local host"}, `--router-domain "local host"`},
		"not covered":             {cert1, key1, []string{"--domain", "hello.localhost"}, "the certificate covers www.hello.test, not hello.localhost"},
		"garbage":                 {[]byte("not a certificate"), key1, nil, "no PEM CERTIFICATE block"},
		"key for cert":            {key1, cert1, nil, "not a CERTIFICATE"},
		"too large":               {big, key1, nil, "more than 65536 bytes"},
		"garbage key":             {cert1, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), nil, "key: not a PKCS#8, RSA or EC private key"},
		"bad --domain":            {cert1, key1, []string{"--domain", "www.hello.test/.."}, "--domain"},
		"one file only":           {cert1, nil, nil, "certs:add takes two files"},
	} {
		args := append([]string{}, tc.args...)
		args = append(args, write(name+".crt", tc.cert))
		if tc.key != nil {
			args = append(args, write(name+".key", tc.key))
		}
		code, _, errOut := app.run("certs:add", args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("certs:add with %s: exit %d, stderr %q; want an error with %q", name, code, errOut, tc.want)
		}
	}

	// Exactly <app>.<router domain> is the app's.
	local, localKey := ca.IssueNow(t, "hello.localhost")
	if out := app.must("certs:add", "--router-domain", "localhost", write("local.crt", local), write("local.key", localKey)); !strings.Contains(out, "Added the certificate for hello.localhost to hello") {
		t.Errorf("certs:add for hello.localhost printed %q", out)
	}
	app.must("certs:remove", "hello.localhost")

	// A bad certificate stored behind the CLI's back: the previous one keeps serving.
	nomad := appNomad(t, g, "hello")
	path := certapi.CertPrefix + certapi.VariableName("www.hello.test")
	if _, _, err := nomad.Variables().Create(&nomadapi.Variable{Path: path, Items: nomadapi.VariableItems{
		certapi.CertItem: string(expired), certapi.KeyItem: string(expiredKey)}}, nil); err != nil {
		t.Fatal(err)
	}
	routerLog := filepath.Join(g.Options.DataDir, "router.log")
	testutil.WaitFor(t, 30*time.Second, "the router logging the bad certificate", func() error {
		if !strings.Contains(devgrid.Tail(routerLog, 200), "an app's certificate is bad; the previous one keeps serving") {
			return fmt.Errorf("router log:\n%s", devgrid.Tail(routerLog, 20))
		}
		return nil
	})
	if s := servedSerial(t, tlsAddr, "www.hello.test", ca.Pool); s != serial1 {
		t.Fatalf("after a bad certificate the router serves serial %s, want the previous %s", s, serial1)
	}

	// A new certificate is served without a restart.
	cert2, key2 := ca.IssueNow(t, "www.hello.test")
	app.must("certs:add", write("cert2.pem", cert2), write("key2.pem", key2))
	block, _ := pem.Decode(cert2)
	leaf2, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "the new certificate served", func() error {
		if s := servedSerial(t, tlsAddr, "www.hello.test", ca.Pool); s != leaf2.SerialNumber.String() {
			return fmt.Errorf("serving serial %s", s)
		}
		return nil
	})
	if out := app.must("certs"); !strings.Contains(out, "www.hello.test  names=www.hello.test") || !strings.Contains(out, "redirect HTTP to HTTPS: off") {
		t.Errorf("dyno certs printed:\n%s", out)
	}

	// The router's own token reads the app's HTTPS Variables and nothing else of it.
	routerNomad, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + g.Options.NomadAddr(),
		SecretID: harness.Tokens(t, g).Nomad[policies.NomadRouter], Namespace: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := routerNomad.Variables().Read(path, nil); err != nil {
		t.Errorf("the router's token cannot read the app's certificate: %v", err)
	}
	vars, _, err := nomad.Variables().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vars {
		if strings.HasPrefix(v.Path, certapi.Prefix) || v.Path == "dyno/router-logs" {
			continue
		}
		if _, _, err := routerNomad.Variables().Read(v.Path, nil); err == nil {
			t.Errorf("the router's token reads the app's Variable %s", v.Path)
		}
	}
	if _, _, err := routerNomad.Variables().Create(&nomadapi.Variable{Path: path, Items: nomadapi.VariableItems{"cert": "x"}}, nil); err == nil {
		t.Errorf("the router's token writes the app's certificate")
	}

	// Redirect: plain HTTP answers 301 to HTTPS.
	app.must("certs:redirect", "on")
	testutil.WaitFor(t, 30*time.Second, "plain HTTP redirected", func() error {
		req, _ := http.NewRequest(http.MethodGet, "http://"+g.Options.RouterAddr()+"/x?y=1", nil)
		req.Host = "www.hello.test"
		resp, err := noFollow.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://www.hello.test/x?y=1" {
			return fmt.Errorf("got %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		return nil
	})

	// Removed, the certificate is no longer served: the default one does not cover the
	// custom domain.
	app.must("certs:remove", "www.hello.test")
	testutil.WaitFor(t, 30*time.Second, "the removed certificate gone", func() error {
		c, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: "www.hello.test", RootCAs: ca.Pool})
		if err == nil {
			c.Close()
			return fmt.Errorf("still served")
		}
		return nil
	})
	if code, _, errOut := app.run("certs:remove", "www.hello.test"); code == 0 || !strings.Contains(errOut, "hello has no certificate for www.hello.test") {
		t.Errorf("certs:remove of a removed certificate: exit %d, %q", code, errOut)
	}
}

var noFollow = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// servedSerial is the serial number of the certificate the router serves for name.
func servedSerial(t *testing.T, addr, name string, roots *x509.CertPool) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS to %s as %s: %v", addr, name, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestHTTPSACMECertificate runs the grid with its ACME server (Pebble) and the router
// ordering certificates: the example app answers `curl --http2 https://hello.localhost/`
// with a certificate Pebble issued after an HTTP-01 challenge the router answered, and
// that certificate is renewed before it expires and swapped in without a restart.
func TestHTTPSACMECertificate(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed: %v", err)
	}
	const validity = 90 * time.Second // renewed with a third left: after 60 s
	g := harness.Grid(t, harness.WithRouter(t), harness.WithACME(t, validity))
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	dir := copyApp(t)
	writeSpec(t, dir, strings.Replace(webSpec("hello", ""), "count        = 2", "count        = 1", 1))
	newCLI(t, g, "hello").must("deploy", dir)
	passingDynos(t, consul, "hello", 1, time.Minute)

	rootFile, pool := acmeRoot(t, g)
	_, port, _ := net.SplitHostPort(g.Options.RouterTLSAddr())
	url := "https://hello.localhost:" + port + "/"
	testutil.WaitFor(t, 90*time.Second, "curl --http2 reaching the app with a certificate from the ACME server", func() error {
		cmd := exec.Command("curl", "-sS", "--http2", "--max-time", "10", "--cacert", rootFile,
			"--resolve", "hello.localhost:"+port+":127.0.0.1", "-w", "\nhttp_version=%{http_version}", url)
		b, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(b), "http_version=2") || !strings.Contains(string(b), "Hello") {
			return fmt.Errorf("curl: %v\n%s", err, b)
		}
		return nil
	})
	first := servedSerial(t, g.Options.RouterTLSAddr(), "hello.localhost", pool)
	routerLog := filepath.Join(g.Options.DataDir, "router.log")
	if !strings.Contains(devgrid.Tail(routerLog, 400), "ordered a certificate over ACME: app=hello host=hello.localhost") {
		t.Errorf("no line for the order in the router's log:\n%s", devgrid.Tail(routerLog, 40))
	}
	// Renewed before it expires, and served without a restart.
	testutil.WaitFor(t, validity, "the certificate renewed", func() error {
		if s := servedSerial(t, g.Options.RouterTLSAddr(), "hello.localhost", pool); s == first {
			return fmt.Errorf("still serving serial %s", s)
		}
		return nil
	})
}

// acmeRoot is the root certificate of the grid's ACME server, in a file (for curl) and
// in a pool (for Go clients).
func acmeRoot(t *testing.T, g *devgrid.Grid) (string, *x509.CertPool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root, err := g.Options.ACMERoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "acme-root.pem")
	if err := os.WriteFile(file, root, 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(root) {
		t.Fatalf("the ACME server's root is not PEM:\n%s", root)
	}
	return file, pool
}
