package multihost

import (
	"fmt"
	"path/filepath"

	"github.com/dynogrid/dynogrid/internal/devgrid"
)

// serverConfig is the Nomad server of the server host: no client.
func serverConfig(h *Host, consulToken string) string {
	return fmt.Sprintf(`# Written by the multihost test grid.
disable_update_check = true
name      = %[1]q
data_dir  = %[2]q
bind_addr = %[3]q
server {
  enabled          = true
  bootstrap_expect = 1
}
client {
  enabled = false
}
acl {
  enabled = true
}
consul {
  address = "127.0.0.1:8500"
  token   = %[4]q
}
`, h.Name, filepath.Join(h.Dir, "nomad"), h.Addr, consulToken)
}

// clientConfig is the Nomad client of a client host: its own name, data dir, address,
// cgroup parents, the server host's RPC address and its own Consul agent.
func clientConfig(h, server *Host, pluginDir, consulToken string) string {
	return fmt.Sprintf(`# Written by the multihost test grid.
disable_update_check = true
name       = %[1]q
data_dir   = %[2]q
plugin_dir = %[3]q
bind_addr  = %[4]q
client {
  enabled           = true
  servers           = [%[5]q]
  network_interface = "eth0"
  cgroup_parent     = %[6]q
  # Dynos in network namespaces of their own on the host's bridge "nomad" (CNI).
  cni_path          = %[10]q
  options {
    "driver.raw_exec.enable" = "0"
    # No cloud metadata probes: a test host talks to the test subnet only.
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}
acl {
  enabled = true
}
consul {
  address = "127.0.0.1:8500"
  token   = %[11]q
}
plugin "raw_exec" {
  config {
    enabled = false
  }
}
# External plugins are configured by the name of their binary.
plugin "nomad-driver-dyno" {
  config {
    slug_dir      = %[7]q
    dyno_dir      = %[8]q
    cgroup_parent = %[9]q
  }
}
`, h.Name, filepath.Join(h.Dir, "nomad"), pluginDir, h.Addr, server.Addr+":4647",
		h.CgroupParent+"-nomad", filepath.Join(h.Dir, "slugs"), filepath.Join(h.Dir, "dynos"), h.CgroupParent, devgrid.CNIPath, consulToken)
}
