package devgrid

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// The local grid's ACME server: Let's Encrypt's Pebble, with its DNS server
// (pebble-challtestsrv) answering 127.0.0.1 for every name, so that Pebble's HTTP-01
// validations reach the grid's router on loopback and nothing leaves the machine. It
// runs when Options.ACMEPort is set and both binaries are in BinDir (`make agents`).

// ACMEDirectory is the grid's ACME directory URL.
func (o Options) ACMEDirectory() string { return fmt.Sprintf("https://localhost:%d/dir", o.ACMEPort) }

// ACMERootsURL serves the PEM root of the certificates the grid's ACME server issues
// (Pebble makes a new one each time it starts).
func (o Options) ACMERootsURL() string {
	return fmt.Sprintf("https://localhost:%d/roots/0", o.ACMEPort+1)
}

func (o Options) pebbleBins() (pebble, dns string, ok bool) {
	pebble, dns = filepath.Join(o.BinDir, "pebble"), filepath.Join(o.BinDir, "pebble-challtestsrv")
	for _, b := range []string{pebble, dns} {
		if _, err := os.Stat(b); err != nil {
			return "", "", false
		}
	}
	return pebble, dns, true
}

// startPebble runs the DNS server and Pebble, issuing certificates valid for
// ACMEValidity (Pebble's default without it), and waits until Pebble answers.
func (g *Grid) startPebble(ctx context.Context, ca *gridCA) error {
	o := g.Options
	pebble, dns, ok := o.pebbleBins()
	if !ok {
		return fmt.Errorf("missing pebble or pebble-challtestsrv in %s (run `make agents`)", o.BinDir)
	}
	certFile, keyFile, err := o.issue(ca, "pebble", "localhost")
	if err != nil {
		return err
	}
	profile := map[string]any{"description": "the local grid's"}
	if o.ACMEValidity > 0 {
		profile["validityPeriod"] = int(o.ACMEValidity.Seconds())
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", o.ACMEPort),
		"managementListenAddress": fmt.Sprintf("127.0.0.1:%d", o.ACMEPort+1),
		"certificate":             certFile, "privateKey": keyFile,
		"httpPort": o.RouterPort, "tlsPort": o.RouterPort + 3,
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
		"profiles": map[string]any{"default": profile},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(o.tlsDir(), "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
		return err
	}
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", o.ACMEPort+2)
	if err := g.start("pebble-dns", nil, dns, "-dnsserver", dnsAddr, "-management", fmt.Sprintf("127.0.0.1:%d", o.ACMEPort+3),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-http01", "", "-https01", "", "-doh", "", "-tlsalpn01", ""); err != nil {
		return err
	}
	// No random sleeps before validations, and no nonces refused for practice.
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"}
	if err := g.start("pebble", env, pebble, "-config", cfgFile, "-dnsserver", dnsAddr, "-strict=false"); err != nil {
		return err
	}
	client := o.gridCAClient()
	return g.waitFor(ctx, "pebble", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.ACMEDirectory(), nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("pebble answered %s", resp.Status)
		}
		return nil
	})
}

// gridCAClient is an HTTP client that trusts the grid's CA (Pebble's own HTTPS).
func (o Options) gridCAClient() *http.Client {
	pool := x509.NewCertPool()
	if b, err := os.ReadFile(o.RouterCAFile()); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// ACMERoot reads the PEM root of the certificates the grid's ACME server issues.
func (o Options) ACMERoot(ctx context.Context) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.ACMERootsURL(), nil)
	resp, err := o.gridCAClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("pebble's roots: %s", resp.Status)
	}
	b := make([]byte, 64<<10)
	n, _ := io.ReadFull(resp.Body, b)
	return b[:n], nil
}
