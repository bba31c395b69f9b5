package agentapi

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

func TestNomadAddress(t *testing.T) {
	t.Setenv("NOMAD_ADDR", "https://nomad.example:4646")
	for addr, want := range map[string]string{
		"":                      "https://nomad.example:4646",
		"127.0.0.1:4646":        "http://127.0.0.1:4646",
		"https://10.0.0.1:4646": "https://10.0.0.1:4646",
	} {
		c, err := Nomad(addr)
		if err != nil {
			t.Fatalf("Nomad(%q): %v", addr, err)
		}
		if got := c.Address(); got != want {
			t.Errorf("Nomad(%q).Address() = %q, want %q", addr, got, want)
		}
	}
}

func TestConsulTakesAScheme(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1:8500", "http://127.0.0.1:8500", "https://127.0.0.1:8501"} {
		if _, err := Consul(addr); err != nil {
			t.Errorf("Consul(%q): %v", addr, err)
		}
	}
	if _, err := Consul("ftp://127.0.0.1:8500"); err == nil {
		t.Error(`Consul("ftp://...") made a client; want an error naming the scheme`)
	}
}

// agent is an agent's HTTP API on loopback, over TLS with client certificates when tls
// is true, that answers "127.0.0.1:4647" (a leader's address) and keeps the headers of
// the last request.
type agent struct {
	*httptest.Server
	last chan http.Header
}

func newAgent(t *testing.T, tlsOn bool, ca *testutil.CA) *agent {
	a := &agent{last: make(chan http.Header, 1)}
	a.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-a.last:
		default:
		}
		a.last <- r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`"127.0.0.1:4647"`))
	}))
	if tlsOn {
		certPEM, keyPEM := ca.IssueNow(t, "server.global.nomad", "server.dc1.consul")
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		a.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.Pool, ClientAuth: tls.RequireAndVerifyClientCert}
		a.StartTLS()
	} else {
		a.Start()
	}
	t.Cleanup(a.Close)
	return a
}

// tlsFiles writes the CA's certificate and a client certificate and key, and returns
// their paths.
func tlsFiles(t *testing.T, ca *testutil.CA) (caFile, certFile, keyFile string) {
	dir := t.TempDir()
	certPEM, keyPEM := ca.IssueNow(t, "dyno")
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string][]byte{caFile: ca.PEM, certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

// TestClientsAskForNoCompression: the Nomad and Consul clients ask for answers
// uncompressed, with their token, over plain HTTP and over TLS with the CA, client
// certificate and server name of the NOMAD_* and CONSUL_* variables.
func TestClientsAskForNoCompression(t *testing.T) {
	ca := testutil.NewCA(t)
	for _, ag := range []struct {
		prefix, tokenVar, tokenHeader, serverName string
		leader                                    func(addr string) (string, error)
	}{
		{"NOMAD_", "NOMAD_TOKEN", "X-Nomad-Token", "server.global.nomad", func(addr string) (string, error) {
			c, err := Nomad(addr)
			if err != nil {
				return "", err
			}
			return c.Status().Leader()
		}},
		{"CONSUL_", "CONSUL_HTTP_TOKEN", "X-Consul-Token", "server.dc1.consul", func(addr string) (string, error) {
			c, err := Consul(addr)
			if err != nil {
				return "", err
			}
			return c.Status().Leader()
		}},
	} {
		for _, tlsOn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%stls=%v", ag.prefix, tlsOn), func(t *testing.T) {
				a := newAgent(t, tlsOn, ca)
				t.Setenv(ag.tokenVar, "secret-token")
				if tlsOn {
					caFile, certFile, keyFile := tlsFiles(t, ca)
					t.Setenv(ag.prefix+"CACERT", caFile)
					t.Setenv(ag.prefix+"CLIENT_CERT", certFile)
					t.Setenv(ag.prefix+"CLIENT_KEY", keyFile)
					t.Setenv(ag.prefix+"TLS_SERVER_NAME", ag.serverName)
				}
				leader, err := ag.leader(a.URL)
				if err != nil || leader != "127.0.0.1:4647" {
					t.Fatalf("leader %q, %v; want 127.0.0.1:4647", leader, err)
				}
				h := <-a.last
				if got := h.Values("Accept-Encoding"); len(got) != 0 {
					t.Errorf("Accept-Encoding %q, want none", got)
				}
				if got := h.Get(ag.tokenHeader); got != "secret-token" {
					t.Errorf("%s %q, want %s's", ag.tokenHeader, got, ag.tokenVar)
				}
			})
		}
	}
}
