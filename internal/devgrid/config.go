// Package devgrid starts and stops a local grid: a Consul agent and a Nomad agent (server
// and client) whose plugin directory holds Dynogrid's plugins. `dyno dev up` and the e2e
// harness both use it, so the grid a developer sees is the grid the tests run on.
package devgrid

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options say where a grid lives and which ports it takes. The zero value of a field means
// its default (see Defaults).
type Options struct {
	// DataDir holds the agents' data, their logs, the plugin directory and the state file.
	// Down removes it.
	DataDir string
	// BinDir holds nomad, consul and the project's plugin binaries (build/bin).
	BinDir string
	// Bind is the address both agents bind to.
	Bind string
	// ConsulPort is Consul's HTTP port; serf LAN, serf WAN and server RPC take the next three.
	ConsulPort int
	// NomadPort is Nomad's HTTP port; RPC and serf take the next two.
	NomadPort int
	// ExtraNomadConfig is appended to the Nomad agent's configuration file.
	ExtraNomadConfig string
	// HostNetworkDynos lets dynos share the host's network (the driver's
	// allow_host_network): for tests of the driver's sandbox, never for apps.
	HostNetworkDynos bool
	// ConsulOnly starts Consul alone, for tests of parts that need no Nomad.
	ConsulOnly bool
	// RouterPort is the router's HTTP port (its metrics take the next, its logs endpoint
	// the one after, HTTPS the one after that); 0 runs no router.
	RouterPort int
	// RouterDomain is the router's domain: Host <app>.<domain> reaches an app.
	RouterDomain string
	// RouterClusterID, when set, runs the router in cluster mode (-cluster) under that
	// ID, so that routers a test starts beside it share the apps with it.
	RouterClusterID string `json:",omitempty"`
	// AutoscalerMetricsPort serves dyno-autoscaler's /metrics; 0 serves none. The
	// autoscaler runs with the router.
	AutoscalerMetricsPort int `json:"autoscaler_metrics_port,omitempty"`
	// AutoscalerFlags are extra dyno-autoscaler flags (its cooldowns, say).
	AutoscalerFlags []string `json:"autoscaler_flags,omitempty"`
	// ACMEPort is the port of the grid's ACME server, Pebble (pebble.go), which the
	// router orders its certificates from; its management API takes the next port, its
	// DNS server the one after, the DNS server's management the one after that. 0 runs
	// none. ACMEValidity is how long its certificates are valid (0: Pebble's default).
	ACMEPort     int
	ACMEValidity time.Duration `json:",omitempty"`
	// PostgresPort is the port of the PostgreSQL server for the postgres add-on; 0 runs
	// none.
	PostgresPort int
	// LogDrain configures the log drain shipper (dyno-logdrain), which runs when it is
	// built.
	LogDrain LogDrainOptions `json:"log_drain"`
	// CgroupParent is the Nomad client's cgroup parent ("" for Nomad's default). Grids
	// that run side by side on one machine each take their own.
	CgroupParent string
	// Network is the grid's dyno bridge, made by Up (see network.go).
	Network *Network `json:"network,omitempty"`
}

// LogDrainOptions configures the grid's log drain shipper.
type LogDrainOptions struct {
	// AllowNets are CIDRs that drains may reach although not public (a grid's own
	// loopback, for tests); none by default.
	AllowNets string `json:"allow_nets,omitempty"`
	// CAFile holds PEM certificates the shipper trusts besides the system's.
	CAFile string `json:"ca_file,omitempty"`
	// MetricsPort is the port of its /metrics endpoint on Bind; 0 serves none.
	MetricsPort int `json:"metrics_port,omitempty"`
	// BufferBytes bounds what each drain holds while it is down (0: the shipper's
	// default, 4 MiB).
	BufferBytes int `json:"buffer_bytes,omitempty"`
}

// Defaults are the ports and places `dyno dev up` uses when no flag says otherwise.
func Defaults() Options {
	return Options{
		DataDir:      filepath.Join(os.TempDir(), "dynogrid-dev"),
		Bind:         "127.0.0.1",
		ConsulPort:   8500,
		NomadPort:    4646,
		RouterPort:   8080,
		RouterDomain: "localhost",
		ACMEPort:     14000,
		PostgresPort: 5433,

		AutoscalerMetricsPort: 8084,
	}
}

func (o Options) withDefaults() Options {
	d := Defaults()
	if o.DataDir == "" {
		o.DataDir = d.DataDir
	}
	if o.Bind == "" {
		o.Bind = d.Bind
	}
	if o.ConsulPort == 0 {
		o.ConsulPort = d.ConsulPort
	}
	if o.NomadPort == 0 {
		o.NomadPort = d.NomadPort
	}
	if o.RouterDomain == "" {
		o.RouterDomain = d.RouterDomain
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.BinDir == "" {
		errs = append(errs, errors.New("bin dir: must name the folder that holds nomad and consul"))
	}
	for name, p := range map[string]int{"consul port": o.ConsulPort, "nomad port": o.NomadPort} {
		if p < 1 || p > 65535-3 {
			errs = append(errs, fmt.Errorf("%s: %d is not a port from 1 to 65532", name, p))
		}
	}
	seen := map[int]bool{}
	for _, p := range o.ports() {
		if seen[p] {
			errs = append(errs, fmt.Errorf("ports: port %d is asked for twice (consul takes %d-%d, nomad %d-%d, the router %d-%d)",
				p, o.ConsulPort, o.ConsulPort+3, o.NomadPort, o.NomadPort+2, o.RouterPort, o.RouterPort+3))
			break
		}
		seen[p] = true
	}
	for name, p := range map[string]int{"router port": o.RouterPort, "acme port": o.ACMEPort, "postgres port": o.PostgresPort, "autoscaler metrics port": o.AutoscalerMetricsPort} {
		if p < 0 || p > 65532 {
			errs = append(errs, fmt.Errorf("%s: %d is not a port", name, p))
		}
	}
	if !filepath.IsAbs(o.DataDir) {
		errs = append(errs, fmt.Errorf("data dir: %q must be an absolute path", o.DataDir))
	}
	return errors.Join(errs...)
}

// ConsulAddr is Consul's HTTP address, host:port.
func (o Options) ConsulAddr() string { return fmt.Sprintf("%s:%d", o.Bind, o.ConsulPort) }

// NomadAddr is Nomad's HTTP address, host:port.
func (o Options) NomadAddr() string { return fmt.Sprintf("%s:%d", o.Bind, o.NomadPort) }

// RouterAddr is the router's HTTP address, host:port.
func (o Options) RouterAddr() string { return fmt.Sprintf("%s:%d", o.Bind, o.RouterPort) }

// RouterLogsAddr is the address of the router's logs endpoint, host:port.
func (o Options) RouterLogsAddr() string { return fmt.Sprintf("%s:%d", o.Bind, o.RouterPort+2) }

func (o Options) ports() []int {
	ports := []int{o.ConsulPort, o.ConsulPort + 1, o.ConsulPort + 2, o.ConsulPort + 3,
		o.NomadPort, o.NomadPort + 1, o.NomadPort + 2}
	if o.RouterPort != 0 {
		ports = append(ports, o.RouterPort, o.RouterPort+1, o.RouterPort+2, o.RouterPort+3)
	}
	if o.ACMEPort != 0 {
		ports = append(ports, o.ACMEPort, o.ACMEPort+1, o.ACMEPort+2, o.ACMEPort+3)
	}
	if o.PostgresPort != 0 {
		ports = append(ports, o.PostgresPort)
	}
	if o.LogDrain.MetricsPort != 0 {
		ports = append(ports, o.LogDrain.MetricsPort)
	}
	if o.RouterPort != 0 && o.AutoscalerMetricsPort != 0 {
		ports = append(ports, o.AutoscalerMetricsPort)
	}
	return ports
}

func (o Options) consulConfig() string {
	return fmt.Sprintf(`# Written by dyno dev up.
disable_update_check = true
bind_addr   = %[1]q
client_addr = %[1]q
ports {
  http     = %[2]d
  serf_lan = %[3]d
  serf_wan = %[4]d
  server   = %[5]d
  dns      = -1
  grpc     = -1
  grpc_tls = -1
}
# Default deny: the grid bootstraps the ACLs once and hands out a token per component.
acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
}
`, o.Bind, o.ConsulPort, o.ConsulPort+1, o.ConsulPort+2, o.ConsulPort+3)
}

// nomadConfig is the Nomad agent's configuration; consulToken is the token it uses with
// Consul, so the file is root's only.
func (o Options) nomadConfig(consulToken string) string {
	return fmt.Sprintf(`# Written by dyno dev up.
disable_update_check = true
data_dir   = %[1]q
plugin_dir = %[2]q
bind_addr  = %[3]q
ports {
  http = %[4]d
  rpc  = %[5]d
  serf = %[6]d
}
acl {
  enabled = true
}
server {
  # Every release and every scale (dyno ps:scale, the UI's count stepper) is a version
  # of the app's job; dyno releases and dyno rollback find releases in this history.
  job_tracked_versions = 100
}
consul {
  address = %[7]q
  token   = %[14]q
}
client {
  # Dynos bind to the host's loopback in a dev grid.
  network_interface = "lo"
  # Jobs take the client's dynamic ports only: no job is given a static host port (an
  # agent's, any host service's), in any network mode. Nomad's bridge mode would map
  # one into the job's network before the dyno driver could refuse its task.
  reserved {
    reserved_ports = %[17]q
  }
  # Templates read Nomad Variables only (through their job's identity). The functions
  # that read Consul (with the Nomad agent's token: every service, node and address of
  # the grid) or Vault are off, so that an app's job cannot list them into its dyno; so
  # is file, which reads the job's artifacts, fetched from this host's network.
  template {
    function_denylist = %[18]s
  }
  # No job fetches artifacts here: Nomad would fetch them from this host's network,
  # with the host's cloud credentials (s3::, gcs::), where a dyno may not reach, and an
  # app's job could read them into its dyno (a template's source). Every fetch fails.
%[19]s%[10]s%[12]s  options {
    # -dev turns raw_exec on; a grid that sandboxes dynos keeps it off.
    "driver.raw_exec.enable" = "0"
  }
}
plugin "raw_exec" {
  config {
    enabled = false
  }
}
plugin "nomad-driver-dyno" {
  config {
    slug_dir       = %[9]q
    slug_store_dir = %[15]q
    dyno_dir       = %[11]q
%[13]s%[16]s  }
}
%[8]s
`, filepath.Join(o.DataDir, "nomad"), o.pluginDir(), o.Bind, o.NomadPort, o.NomadPort+1, o.NomadPort+2,
		o.ConsulAddr(), o.ExtraNomadConfig, o.slugCache(), o.cgroupParentLine(), filepath.Join(o.DataDir, "dynos"),
		o.Network.nomadClientNetwork(), o.Network.driverFirewall(o.PostgresPort), consulToken, o.SlugStore(), o.hostNetworkLine(),
		staticPortsReserved, templateFunctionDenylist, artifactsOff)
}

// hostNetworkLine lets dynos share the host's network when the grid's options say so.
func (o Options) hostNetworkLine() string {
	if !o.HostNetworkDynos {
		return ""
	}
	return "    allow_host_network = true\n"
}

// cgroupParentLine sets the client's cgroup parent. On cgroups v1 Nomad then manages
// no cpuset and would report no reservable core, so the online cores are named: the
// dyno driver pins each dyno to its reserved core itself.
func (o Options) cgroupParentLine() string {
	if o.CgroupParent == "" {
		return ""
	}
	line := fmt.Sprintf("  cgroup_parent = %q\n", o.CgroupParent)
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		line += fmt.Sprintf("  reservable_cores = %q\n", strings.TrimSpace(string(b)))
	}
	return line
}

func (o Options) pluginDir() string { return filepath.Join(o.DataDir, "plugins") }

// SlugStore is where `dyno deploy` stores slugs for this grid.
func (o Options) SlugStore() string { return filepath.Join(o.DataDir, "slug-store") }

// AddonConfig is the add-on settings file of this grid (JSON by add-on name).
func (o Options) AddonConfig() string { return filepath.Join(o.DataDir, "addons.json") }

// slugCache is where the dyno driver unpacks slugs, once per host.
func (o Options) slugCache() string { return filepath.Join(o.DataDir, "slugs") }
func (o Options) statePath() string { return filepath.Join(o.DataDir, "grid.json") }
