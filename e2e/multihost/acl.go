package multihost

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/tenancy"
	"github.com/dynogrid/dynogrid/policies"
	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
)

// consulACL turns Consul's ACLs on, default deny, in an agent of the grid; tokens is the
// body of its tokens block.
func consulACL(tokens string) string {
	return `acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
  tokens {
` + tokens + `  }
}
`
}

// bootstrapConsul bootstraps the server's ACLs, gives it its agent token and makes the
// tokens of the grid's other agents and components, as `dyno dev up` does.
func (g *Grid) bootstrapConsul(ctx context.Context) error {
	anon, err := consulapi.NewClient(&consulapi.Config{Address: g.ConsulAddr()})
	if err != nil {
		return err
	}
	mgmt, err := tenancy.BootstrapConsul(ctx, anon)
	if err != nil {
		return err
	}
	g.tokens = &devgrid.Tokens{ConsulManagement: mgmt, Consul: map[string]string{}, Nomad: map[string]string{}}
	c := g.ConsulClient()
	if g.tokens.Consul, err = tenancy.ConsulComponentTokens(c, "multihost"); err != nil {
		return err
	}
	return tenancy.SetConsulAgentToken(c, g.tokens.Consul[policies.ConsulAgent])
}

// bootstrapNomad bootstraps the Nomad server's ACLs.
func (g *Grid) bootstrapNomad(ctx context.Context) error {
	anon, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + g.NomadAddr()})
	if err != nil {
		return err
	}
	g.tokens.NomadManagement, err = tenancy.BootstrapNomad(ctx, anon)
	return err
}

// consulAgentConfig is the ACL configuration file of a client host's Consul agent, with
// its agent token: root's only.
func (g *Grid) consulAgentConfig(h *Host) (string, error) {
	path := filepath.Join(h.Dir, "consul-acl.hcl")
	body := consulACL(fmt.Sprintf("    agent = %q\n", g.tokens.Consul[policies.ConsulAgent]))
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// Tokens are the grid's ACL tokens.
func (g *Grid) Tokens() *devgrid.Tokens { return g.tokens }
