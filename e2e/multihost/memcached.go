package multihost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/tenancy"
	"github.com/dynogrid/dynogrid/policies"
)

// addonInterface is the interface of the client hosts' add-on network: examples/cluster's
// ADDON_INTERFACE, the Nomad host network "addons" that memcached add-ons listen on.
const addonInterface = "addons0"

// addonNet is the add-on network, 10.214.Net.0/24: each client host has its address
// there on addonInterface, and every host reaches it over the bridge.
func (g *Grid) addonNet() string { return fmt.Sprintf("10.214.%d.0/24", g.Net) }

// addonAddr is client host h's address on the add-on network.
func (g *Grid) addonAddr(h *Host) string { return strings.Replace(h.Addr, "10.213.", "10.214.", 1) }

// addonVeth is the root namespace's end of client host h's add-on interface.
func addonVeth(h *Host) string { return h.Veth + "a" }

// makeAddonNetwork gives each client host an interface of its own for add-ons, as an
// operator gives them a second network, and every host a route to that network over
// the bridge. Dynos may reach it (allowed_endpoints), and only add-ons listen there.
func (g *Grid) makeAddonNetwork() error {
	for _, h := range g.Hosts {
		for _, s := range [][]string{
			// A veth pair, since the kernel may lack dummy interfaces; the root end stays
			// unconnected, and the host takes its add-on address's traffic from eth0.
			{"link", "add", addonVeth(h), "type", "veth", "peer", "name", addonInterface, "netns", h.NS},
			{"link", "set", addonVeth(h), "up"},
			{"-n", h.NS, "addr", "add", g.addonAddr(h) + "/32", "dev", addonInterface},
			{"-n", h.NS, "link", "set", addonInterface, "up"},
		} {
			if _, err := ip(s...); err != nil {
				return err
			}
		}
	}
	for _, h := range g.made {
		if _, err := ip("-n", h.NS, "route", "add", g.addonNet(), "dev", "eth0"); err != nil {
			return err
		}
	}
	return nil
}

// configureMemcached makes the memcached add-on's namespace and token and adds its
// settings to the grid's add-on settings: Nomad over HTTPS with the grid's CA, memcached
// on the add-on network.
func (g *Grid) configureMemcached(ctx context.Context) error {
	c := g.NomadClient()
	if err := tenancy.EnsureNamespace(ctx, c, &nomadapi.Namespace{Name: policies.AddonNamespace, Description: "the add-ons' own jobs"}); err != nil {
		return err
	}
	token, err := tenancy.NomadToken(ctx, c, "multihost memcached add-on", policies.NomadAddonMemcached)
	if err != nil {
		return err
	}
	settings := map[string]map[string]string{}
	b, err := os.ReadFile(g.AddonConfig())
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &settings); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	settings["memcached"] = map[string]string{
		"nomad_addr":      g.NomadURL(),
		"nomad_token":     token,
		"nomad_namespace": policies.AddonNamespace,
		"nomad_ca_file":   g.CAFile(),
		"host_network":    "addons",
	}
	if b, err = json.Marshal(settings); err != nil {
		return err
	}
	return os.WriteFile(g.AddonConfig(), b, 0o600)
}
