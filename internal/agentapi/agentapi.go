// Package agentapi makes the Nomad and Consul API clients of Dynogrid's programs as
// HashiCorp's own tools do: from the NOMAD_* and CONSUL_* environment variables
// (address, token, CA and client certificate), with a -nomad-addr or -consul-addr flag
// over the variable's address. Its clients ask for uncompressed answers (NewNomad,
// NewConsul): the agents gzip every answer a client accepts gzipped, at eight times the
// agent's CPU of the answer itself, for answers that cross loopback or a LAN.
package agentapi

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"
	nomadapi "github.com/hashicorp/nomad/api"
)

// Nomad is a client of the Nomad agent at addr, or at $NOMAD_ADDR when addr is "". An
// address without a scheme is plain HTTP.
func Nomad(addr string) (*nomadapi.Client, error) {
	cfg := nomadapi.DefaultConfig()
	if addr != "" {
		cfg.Address = addr
	}
	if !strings.Contains(cfg.Address, "://") {
		cfg.Address = "http://" + cfg.Address
	}
	c, err := NewNomad(cfg)
	if err != nil {
		return nil, fmt.Errorf("nomad address %q: %w", cfg.Address, err)
	}
	return c, nil
}

// Consul is a client of the Consul agent at addr, or at $CONSUL_HTTP_ADDR when addr is
// "". The address may name its scheme (http:// or https://), as $CONSUL_HTTP_ADDR may.
func Consul(addr string) (*consulapi.Client, error) {
	cfg := consulapi.DefaultConfig()
	if addr != "" {
		cfg.Address = addr
	}
	c, err := NewConsul(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul address %q: %w", cfg.Address, err)
	}
	return c, nil
}

// NewNomad is nomadapi.NewClient(cfg) with the HTTP client Nomad's package would make
// (its TLS from cfg.TLSConfig), except that its requests ask for no compression. The
// package sets "Accept-Encoding: gzip" on each request itself, and some of its calls
// (Allocations().Exec, a node's client) need the client's transport to be an
// *http.Transport, so the header is removed where that transport reads each request
// first, its Proxy function. A cfg with its own HttpClient is used as it is.
func NewNomad(cfg *nomadapi.Config) (*nomadapi.Client, error) {
	if cfg.HttpClient == nil {
		hc := cleanhttp.DefaultPooledClient()
		t := hc.Transport.(*http.Transport)
		// As nomadapi's own default client: TLS 1.2 at least, HTTP/1 (exec's websocket).
		t.TLSHandshakeTimeout = 10 * time.Second
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		t.ForceAttemptHTTP2 = false
		if err := nomadapi.ConfigureTLS(hc, cfg.TLSConfig); err != nil {
			return nil, err
		}
		t.DisableCompression = true // or net/http asks for gzip in the header's place
		t.Proxy = func(r *http.Request) (*url.URL, error) {
			r.Header.Del("Accept-Encoding") // the request nomadapi made for this call alone
			return http.ProxyFromEnvironment(r)
		}
		cfg.HttpClient = hc
	}
	return nomadapi.NewClient(cfg)
}

// NewConsul is consulapi.NewClient(cfg) whose requests ask for no compression. Consul's
// package leaves Accept-Encoding to net/http, which asks for gzip unless its transport
// disables compression.
func NewConsul(cfg *consulapi.Config) (*consulapi.Client, error) {
	if cfg.HttpClient == nil {
		if cfg.Transport == nil {
			cfg.Transport = cleanhttp.DefaultPooledTransport()
		}
		cfg.Transport.DisableCompression = true
	}
	return consulapi.NewClient(cfg)
}
