package cli

import (
	"os"
	"strings"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/agentapi"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/policies"
)

// consulFlags are the options of a command that reads Consul when it can, and does
// without otherwise.
type consulFlags struct{ addr, token string }

const consulHelp = `
  --consul-addr=ADDR   Consul's HTTP address, to see new web dynos pass their
                       health check (default: $CONSUL_HTTP_ADDR, or the local
                       grid's Consul when Nomad is the local grid's)
  --consul-token=TOKEN A Consul token that reads the app's service and the nodes
                       (default: $CONSUL_HTTP_TOKEN, or the local grid's
                       router token, readable by root only)`

// client is a Consul client for the grid of nomad, or nil when no Consul address is
// known: an address given, or the local grid's when nomad is the local grid's.
func (f consulFlags) client(nomad *nomadapi.Client) *consulapi.Client {
	cfg := consulapi.DefaultConfig() // reads CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN
	g := localGrid()
	local := false
	switch {
	case f.addr != "":
		cfg.Address = f.addr
	case os.Getenv("CONSUL_HTTP_ADDR") != "":
	case g != nil && nomad.Address() == "http://"+g.Options.NomadAddr():
		cfg.Address, local = g.Options.ConsulAddr(), true
	default:
		return nil
	}
	cfg.Address = strings.TrimPrefix(cfg.Address, "http://")
	if f.token != "" {
		cfg.Token = f.token
	}
	if cfg.Token == "" && local {
		// The router's token reads services and nodes, and nothing else.
		cfg.Token = localToken(g, func(t *devgrid.Tokens) string { return t.Consul[policies.ConsulRouter] })
	}
	c, err := agentapi.NewConsul(cfg)
	if err != nil {
		return nil
	}
	return c
}
