// Package agentapi makes the Nomad and Consul API clients of Dynogrid's services (the
// meter, the autoscaler, the log shipper) as HashiCorp's own tools do: from the
// NOMAD_* and CONSUL_* environment variables (address, token, CA and client
// certificate), with a -nomad-addr or -consul-addr flag over the variable's address.
package agentapi

import (
	"fmt"
	"strings"

	consulapi "github.com/hashicorp/consul/api"
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
	c, err := nomadapi.NewClient(cfg)
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
	c, err := consulapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul address %q: %w", cfg.Address, err)
	}
	return c, nil
}
