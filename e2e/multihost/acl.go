package multihost

import (
	"context"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/tenancy"
	"github.com/dynogrid/dynogrid/policies"
)

// bootstrapConsul bootstraps the servers' ACLs, gives each server its agent token and
// makes the tokens of the grid's other agents and components, as an operator does
// (docs/production.md).
func (g *Grid) bootstrapConsul(ctx context.Context) error {
	anon, err := consulapi.NewClient(g.consulConfig(g.ConsulAddr()))
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
	for _, s := range g.Servers {
		cfg := g.consulConfig(s.Addr + ":8501")
		cfg.Token = mgmt
		sc, err := consulapi.NewClient(cfg)
		if err != nil {
			return err
		}
		if err := tenancy.SetConsulAgentToken(sc, g.tokens.Consul[policies.ConsulAgent]); err != nil {
			return err
		}
	}
	return nil
}

// bootstrapNomad bootstraps the Nomad servers' ACLs and makes the router's token.
func (g *Grid) bootstrapNomad(ctx context.Context) error {
	anon, err := nomadapi.NewClient(g.nomadConfig(g.NomadAddr()))
	if err != nil {
		return err
	}
	if g.tokens.NomadManagement, err = tenancy.BootstrapNomad(ctx, anon); err != nil {
		return err
	}
	g.tokens.Nomad[policies.NomadRouter], err = tenancy.NomadToken(ctx, g.NomadClient(), "multihost router", policies.NomadRouter)
	return err
}

// Tokens are the grid's ACL tokens.
func (g *Grid) Tokens() *devgrid.Tokens { return g.tokens }
