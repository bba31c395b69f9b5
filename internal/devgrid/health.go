package devgrid

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/agentapi"
)

// ConsulClient returns an API client for the grid's Consul agent with its management
// token.
func (g *Grid) ConsulClient() (*consulapi.Client, error) {
	return g.consulClientWith(g.token(func(t *Tokens) string { return t.ConsulManagement }))
}

// NomadClient returns an API client for the grid's Nomad agent with its management token.
func (g *Grid) NomadClient() (*nomadapi.Client, error) {
	return g.nomadClientWith(g.token(func(t *Tokens) string { return t.NomadManagement }))
}

func (g *Grid) consulClientWith(token string) (*consulapi.Client, error) {
	cfg := consulapi.DefaultConfig()
	cfg.Address = g.Options.ConsulAddr()
	cfg.Token = token
	return agentapi.NewConsul(cfg)
}

func (g *Grid) nomadClientWith(token string) (*nomadapi.Client, error) {
	cfg := nomadapi.DefaultConfig()
	cfg.Address = "http://" + g.Options.NomadAddr()
	cfg.SecretID = token
	return agentapi.NewNomad(cfg)
}

// consulLeader wants Consul to have elected a leader, which needs no token.
func (g *Grid) consulLeader(context.Context) error {
	c, err := g.consulClientWith("")
	if err != nil {
		return err
	}
	return elected(c.Status().Leader())
}

// nomadLeader wants Nomad to have elected a leader, which needs no token.
func (g *Grid) nomadLeader(context.Context) error {
	c, err := g.nomadClientWith("")
	if err != nil {
		return err
	}
	return elected(c.Status().Leader())
}

// elected reads an agent's answer to "who leads?".
func elected(leader string, err error) error {
	if err != nil {
		return err
	}
	if leader == "" {
		return errors.New("no leader yet")
	}
	return nil
}

func (g *Grid) consulHealthy(ctx context.Context) error {
	c, err := g.ConsulClient()
	if err != nil {
		return err
	}
	// Sessions and checks need the agent's node in the catalog, which anti-entropy adds
	// a moment after the election.
	name, err := c.Agent().NodeName()
	if err != nil {
		return err
	}
	if n, _, err := c.Catalog().Node(name, nil); err != nil || n == nil || n.Node == nil {
		return fmt.Errorf("node %s not in the catalog yet (%v)", name, err)
	}
	return nil
}

// nomadHealthy wants a leader, a ready client node, and every plugin of the plugin
// directory detected and healthy on that node.
func (g *Grid) nomadHealthy(ctx context.Context) error {
	c, err := g.NomadClient()
	if err != nil {
		return err
	}
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	stubs, _, err := c.Nodes().List(q)
	if err != nil {
		return err
	}
	for _, s := range stubs {
		if s.Status != nomadapi.NodeStatusReady {
			continue
		}
		for _, name := range g.driverNames() {
			d, ok := s.Drivers[name]
			if !ok || !d.Detected || !d.Healthy {
				desc := "not detected"
				if ok {
					desc = d.HealthDescription
				}
				return fmt.Errorf("driver %q on node %s is not healthy: %s", name, s.Name, desc)
			}
		}
		return nil
	}
	return errors.New("no ready client node yet")
}

// driverNames lists the task drivers installed in the plugin directory, named as Nomad
// names them (nomad-driver-dyno serves driver "dyno").
func (g *Grid) driverNames() []string {
	matches, _ := filepath.Glob(filepath.Join(g.Options.pluginDir(), "nomad-driver-*"))
	var names []string
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
			names = append(names, filepath.Base(m)[len("nomad-driver-"):])
		}
	}
	return names
}
