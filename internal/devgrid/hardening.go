package devgrid

import "fmt"

// What a grid's Nomad clients refuse the jobs they run, so that an app's job, which the
// app's deploy token writes, takes no static host port, has Nomad fetch nothing from the
// host's network and reads nothing of Consul's into its dyno (docs/security.md). The
// clients of examples/cluster have the same (TestClusterClientsHardenedAsDevGrids).

// templateFunctionDenylist is a client's template function_denylist: Nomad's own
// (plugin, writeToFile), file (which reads the task's directory, where Nomad puts the
// job's artifacts, fetched from the host's network) and every function that reads
// Consul or Vault.
const templateFunctionDenylist = `["plugin", "writeToFile", "file", "datacenters", "key", "keyExists", "keyOrDefault", "ls", "safeLs", "tree", "safeTree", "node", "nodes", "service", "services", "connect", "caRoots", "caLeaf", "secret", "secrets", "pkiCert"]`

// artifactsOff is a client's artifact block that makes every artifact fetch fail at
// once: no job of the grid has one, and Nomad fetches them from the host's network.
const artifactsOff = `  artifact {
    http_read_timeout = "1ns"
    http_max_size     = "1B"
    gcs_timeout       = "1ns"
    git_timeout       = "1ns"
    hg_timeout        = "1ns"
    s3_timeout        = "1ns"
  }
`

// staticPortsReserved is every host port but Nomad's dynamic ones, as a client's
// reserved_ports: no job is given a static host port.
var staticPortsReserved = fmt.Sprintf("1-%d,%d-65535", minDynamicPort-1, maxDynamicPort+1)
