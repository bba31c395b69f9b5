package multihost

import (
	"fmt"
	"os"
	"path/filepath"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/policies"
)

// Slug store settings of the test grid: its port, and its reader (the hosts) and its
// deployer (the CLI).
const (
	storePort      = "8443"
	storeReader    = "reader"
	storeDeployer  = "deployer"
	storePasswords = "store-passwords" // file names below the grid's dir
)

// makeSecrets makes the grid's CA, each host's certificates and the gossip keys.
func (g *Grid) makeSecrets() error {
	// Other users (nginx's workers, dynos) reach what lies below the grid's directory.
	if err := os.Chmod(g.Dir, 0o711); err != nil {
		return err
	}
	ca, err := newTestCA(g.Dir)
	if err != nil {
		return err
	}
	g.ca = ca
	for _, h := range g.made {
		role := "client"
		if g.isServer(h) {
			role = "server"
		}
		if err := ca.issueHost(h, role); err != nil {
			return err
		}
	}
	if err := ca.issue(filepath.Join(g.Store.Dir, "tls"), "slug-store", []string{"slug-store"}, g.Store.Addr); err != nil {
		return err
	}
	g.keys = map[string]string{}
	for _, k := range []string{"CONSUL_GOSSIP_KEY", "NOMAD_GOSSIP_KEY"} {
		if g.keys[k], err = gossipKey(); err != nil {
			return err
		}
	}
	return nil
}

// hostVars are the values of the ${NAME}s of examples/cluster for host h: what an
// operator sets per host (examples/cluster/README.md).
func (g *Grid) hostVars(h *Host) map[string]string {
	var servers, rpc []string
	for _, s := range g.Servers {
		servers = append(servers, s.Addr)
		rpc = append(rpc, s.Addr+":4647")
	}
	v := map[string]string{
		"DATACENTER":                    datacenter,
		"NODE_NAME":                     h.Name,
		"BIND_ADDR":                     h.Addr,
		"SERVERS":                       fmt.Sprint(len(g.Servers)),
		"RETRY_JOIN":                    quoted(servers),
		"NOMAD_SERVERS":                 quoted(rpc),
		"TLS_DIR":                       filepath.Join(h.Dir, "tls"),
		"CONSUL_DATA_DIR":               filepath.Join(h.Dir, "consul"),
		"NOMAD_DATA_DIR":                filepath.Join(h.Dir, "nomad"),
		"NETWORK_INTERFACE":             "eth0",
		"CNI_PATH":                      devgrid.CNIPath,
		"NOMAD_CGROUP_PARENT":           h.CgroupParent + "-nomad",
		"DYNO_CGROUP_PARENT":            h.CgroupParent,
		"SLUG_DIR":                      filepath.Join(h.Dir, "slugs"),
		"DYNO_DIR":                      filepath.Join(h.Dir, "dynos"),
		"SLUG_STORE_URL":                g.StoreURL(),
		"SLUG_STORE_READ_USER":          storeReader,
		"SLUG_STORE_READ_PASSWORD_FILE": filepath.Join(g.Dir, storePasswords, storeReader),
		"DYNO_BIN_DIR":                  g.BinDir,
		"ADDON_INTERFACE":               addonInterface,
	}
	var allowed []string
	if g.postgres != "" {
		allowed = append(allowed, g.postgres)
	}
	if g.memcached {
		// Nomad's dynamic ports on the add-on network, where memcached add-ons listen.
		allowed = append(allowed, g.addonNet()+":20000-32000")
	}
	v["ALLOWED_ENDPOINTS"] = quoted(allowed)
	for k, key := range g.keys {
		v[k] = key
	}
	if g.tokens != nil {
		v["CONSUL_AGENT_TOKEN"] = g.tokens.Consul[policies.ConsulAgent]
		v["NOMAD_CONSUL_TOKEN"] = g.tokens.Consul[policies.ConsulNomad]
	}
	return v
}

// render writes examples/cluster/<name> for a host of this grid (see render).
func (g *Grid) render(name, dst string, vars map[string]string) error {
	return render(filepath.Join(g.repo, "examples", "cluster"), name, dst, vars)
}

// nomadConfig is an API configuration for the Nomad agent at addr, over TLS with the
// grid's CA, with no token.
func (g *Grid) nomadConfig(addr string) *nomadapi.Config {
	cfg := nomadapi.DefaultConfig()
	cfg.Address = "https://" + addr
	cfg.SecretID = ""
	cfg.TLSConfig = &nomadapi.TLSConfig{CACert: g.ca.File}
	return cfg
}

// consulConfig is an API configuration for the Consul agent at addr (HTTPS), with the
// grid's CA and no token.
func (g *Grid) consulConfig(addr string) *consulapi.Config {
	cfg := consulapi.DefaultConfig()
	cfg.Address, cfg.Scheme, cfg.Token = addr, "https", ""
	cfg.TLSConfig = consulapi.TLSConfig{CAFile: g.ca.File}
	return cfg
}
