package cli

import (
	"fmt"
	"net/http"
	"strings"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/apierr"
)

// GridStatus is which grid the CLI talks to and who it is there, as `dyno status`
// shows it. A field this token may not read is empty.
type GridStatus struct {
	Nomad  NomadStatus   `json:"nomad"`
	Consul *ConsulStatus `json:"consul,omitempty"`
}

// NomadStatus is the Nomad side of a grid.
type NomadStatus struct {
	Address string `json:"address"`
	Region  string `json:"region"`
	Leader  string `json:"leader"`
	Version string `json:"version,omitempty"`
	// Token is the name of the token the CLI uses, its type and policies.
	Token     string   `json:"token"`
	TokenType string   `json:"token_type"`
	Policies  []string `json:"policies"`
	// Namespaces are the apps' namespaces the token may see.
	Namespaces []string `json:"namespaces"`
}

// ConsulStatus is the Consul side of a grid.
type ConsulStatus struct {
	Address    string   `json:"address"`
	Datacenter string   `json:"datacenter,omitempty"`
	Leader     string   `json:"leader"`
	Version    string   `json:"version,omitempty"`
	Token      string   `json:"token"`
	Policies   []string `json:"policies"`
}

type statusCommand struct{ meta }

func (c *statusCommand) Synopsis() string { return "Show which grid this is and who you are on it" }
func (c *statusCommand) Help() string {
	return `Usage: dyno status [options]

  Shows the grid the CLI talks to (Nomad's address, region, leader and
  version; Consul's when it is known) and the token it uses there: its name,
  type, policies and the namespaces it sees. Over TLS, the CLI reads
  NOMAD_CACERT, NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY, and CONSUL_CACERT,
  CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY, as Nomad's and Consul's own CLIs do.
` + commonHelp + consulHelp
}

func (c *statusCommand) Run(args []string) int {
	var cf consulFlags
	fs := c.flagSet("status")
	fs.StringVar(&cf.addr, "consul-addr", "", "")
	fs.StringVar(&cf.token, "consul-token", "", "")
	if err := parseArgs(fs, args); err != nil || !noArgs(c.ui, fs) {
		return 1
	}
	nomad, err := c.nomad("")
	if err != nil {
		return c.fail(err)
	}
	st := GridStatus{}
	if st.Nomad, err = nomadStatus(nomad); err != nil {
		return c.fail(err)
	}
	if consul := cf.client(nomad); consul != nil {
		cs, err := consulStatus(consul, cf.addr)
		if err != nil {
			return c.fail(err)
		}
		st.Consul = cs
	}
	if c.json {
		return c.printJSON(st)
	}
	n := st.Nomad
	c.ui.Output(fmt.Sprintf("Nomad   %s  region %s  leader %s%s", n.Address, n.Region, n.Leader, versionText(n.Version)))
	if cs := st.Consul; cs != nil {
		c.ui.Output(fmt.Sprintf("Consul  %s  datacenter %s  leader %s%s", cs.Address, orUnknown(cs.Datacenter), cs.Leader, versionText(cs.Version)))
	}
	c.ui.Output(fmt.Sprintf("Token   %q (%s)  policies %s  namespaces %s", n.Token, n.TokenType, listText(n.Policies), listText(n.Namespaces)))
	if cs := st.Consul; cs != nil {
		c.ui.Output(fmt.Sprintf("Consul token %q  policies %s", cs.Token, listText(cs.Policies)))
	}
	return 0
}

// nomadStatus reads what any valid token may: the leader, the regions, the token
// itself and the namespaces it sees; the version when the token may read the agent.
func nomadStatus(n *nomadapi.Client) (NomadStatus, error) {
	st := NomadStatus{Address: n.Address()}
	leader, err := n.Status().Leader()
	if err != nil {
		return st, fmt.Errorf("failed to reach Nomad at %s: %w", st.Address, err)
	}
	st.Leader = leader
	if regions, err := n.Regions().List(); err == nil && len(regions) == 1 {
		st.Region = regions[0]
	} else if err == nil {
		st.Region = strings.Join(regions, ",")
	}
	tok, _, err := n.ACLTokens().Self(nil)
	if err != nil {
		return st, fmt.Errorf("this token is unknown to Nomad at %s: %w", st.Address, err)
	}
	st.Token, st.TokenType, st.Policies = tok.Name, tok.Type, tok.Policies
	// Only a token that may read the agent learns its version.
	if self, err := n.Agent().Self(); err == nil {
		st.Version = self.Member.Tags["build"]
	}
	nss, _, err := n.Namespaces().List(nil)
	if err != nil && !apierr.IsStatus(err, http.StatusForbidden) {
		return st, fmt.Errorf("failed to list Nomad's namespaces: %w", err)
	}
	for _, ns := range nss {
		st.Namespaces = append(st.Namespaces, ns.Name)
	}
	return st, nil
}

// consulStatus reads Consul's leader and this token, and the agent when the token may.
func consulStatus(c *consulapi.Client, addr string) (*ConsulStatus, error) {
	st := &ConsulStatus{Address: addr}
	if st.Address == "" {
		st.Address = consulapi.DefaultConfig().Address
	}
	leader, err := c.Status().Leader()
	if err != nil {
		return nil, fmt.Errorf("failed to reach Consul at %s: %w", st.Address, err)
	}
	st.Leader = leader
	tok, _, err := c.ACL().TokenReadSelf(nil)
	if err != nil {
		return nil, fmt.Errorf("this token is unknown to Consul at %s: %w", st.Address, err)
	}
	st.Token = tok.Description
	for _, p := range tok.Policies {
		st.Policies = append(st.Policies, p.Name)
	}
	if self, err := c.Agent().Self(); err == nil {
		st.Datacenter, _ = self["Config"]["Datacenter"].(string)
		st.Version, _ = self["Config"]["Version"].(string)
	}
	return st, nil
}

func versionText(v string) string {
	if v == "" {
		return ""
	}
	return "  version " + v
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown to this token)"
	}
	return s
}

func listText(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, ",")
}
