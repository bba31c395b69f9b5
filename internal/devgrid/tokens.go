package devgrid

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/tenancy"
	"github.com/dynogrid/dynogrid/policies"
)

// Tokens are a grid's ACL tokens: the management token of each agent and the
// least-privilege token of each component, by the name of its policy file. They are
// kept in the data directory, readable by root only.
type Tokens struct {
	ConsulManagement string            `json:"consul_management"`
	NomadManagement  string            `json:"nomad_management"`
	Consul           map[string]string `json:"consul"`
	Nomad            map[string]string `json:"nomad"`
}

// TokensFile is the file of a grid's tokens in its data directory.
const TokensFile = "tokens.json"

// Tokens reads the grid's tokens.
func (g *Grid) Tokens() (*Tokens, error) {
	b, err := os.ReadFile(g.Options.tokensPath())
	if err != nil {
		return nil, fmt.Errorf("failed to read the grid's tokens (root only): %w", err)
	}
	var t Tokens
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("corrupt tokens file %s: %w", g.Options.tokensPath(), err)
	}
	return &t, nil
}

// token is one token of the grid, or "" when the tokens cannot be read (a client then
// gets Nomad's or Consul's own "permission denied").
func (g *Grid) token(pick func(*Tokens) string) string {
	t, err := g.Tokens()
	if err != nil {
		return ""
	}
	return pick(t)
}

func (o Options) tokensPath() string { return filepath.Join(o.DataDir, TokensFile) }

func (g *Grid) saveTokens(t *Tokens) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	tmp := g.Options.tokensPath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("failed to save the grid's tokens: %w", err)
	}
	return os.Rename(tmp, g.Options.tokensPath())
}

// bootstrapConsul bootstraps Consul's ACLs once, gives the agent its own token and
// makes the tokens of the components that use Consul.
func (g *Grid) bootstrapConsul(ctx context.Context) (*Tokens, error) {
	anon, err := g.consulClientWith("")
	if err != nil {
		return nil, err
	}
	mgmt, err := tenancy.BootstrapConsul(ctx, anon)
	if err != nil {
		return nil, err
	}
	t := &Tokens{ConsulManagement: mgmt, Consul: map[string]string{}, Nomad: map[string]string{}}
	// Saved at once: whatever fails next, the grid's owner holds its management token.
	if err := g.saveTokens(t); err != nil {
		return nil, err
	}
	c, err := g.consulClientWith(mgmt)
	if err != nil {
		return nil, err
	}
	if t.Consul, err = tenancy.ConsulComponentTokens(c, "dynogrid"); err != nil {
		return nil, err
	}
	if err := tenancy.SetConsulAgentToken(c, t.Consul[policies.ConsulAgent]); err != nil {
		return nil, err
	}
	return t, g.saveTokens(t)
}

// bootstrapNomad bootstraps Nomad's ACLs once and makes the tokens of the components
// that use Nomad, and the add-ons' namespace.
func (g *Grid) bootstrapNomad(ctx context.Context, t *Tokens) error {
	anon, err := g.nomadClientWith("")
	if err != nil {
		return err
	}
	if t.NomadManagement, err = tenancy.BootstrapNomad(ctx, anon); err != nil {
		return err
	}
	if err := g.saveTokens(t); err != nil {
		return err
	}
	c, err := g.nomadClientWith(t.NomadManagement)
	if err != nil {
		return err
	}
	if err := tenancy.EnsureNamespace(ctx, c, &nomadapi.Namespace{Name: policies.AddonNamespace, Description: "the add-ons' own jobs"}); err != nil {
		return err
	}
	for _, name := range []string{policies.NomadMeter, policies.NomadRouter, policies.NomadAddonMemcached, policies.NomadLogDrain, policies.NomadAutoscaler} {
		if t.Nomad[name], err = tenancy.NomadToken(ctx, c, "dynogrid "+name, name); err != nil {
			return err
		}
	}
	return g.saveTokens(t)
}
