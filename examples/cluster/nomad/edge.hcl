# The Nomad client of an edge host: it runs the router (jobs/dyno-router.nomad.hcl, a
# system job on node class "edge") and no dynos (no dyno driver here).
#
# ${...} names are set per host when the file is installed (envsubst; see
# examples/cluster/README.md). Keep the installed file readable by root only.

disable_update_check = true
region               = "global"
datacenter           = "${DATACENTER}"
name                 = "${NODE_NAME}"
data_dir             = "${NOMAD_DATA_DIR}"
bind_addr            = "${BIND_ADDR}"

client {
  enabled           = true
  node_class        = "edge"
  servers           = [${NOMAD_SERVERS}]
  network_interface = "${NETWORK_INTERFACE}"
  cgroup_parent     = "${NOMAD_CGROUP_PARENT}"
  # Templates read Nomad Variables only (through their job's identity). The functions
  # that read Consul (with the Nomad agent's token: every service, node and address of
  # the grid) or Vault are off, so that an app's job cannot list them into its dyno; so
  # is file, which reads the job's artifacts, fetched from this host's network.
  template {
    function_denylist = ["plugin", "writeToFile", "file", "datacenters", "key", "keyExists", "keyOrDefault", "ls", "safeLs", "tree", "safeTree", "node", "nodes", "service", "services", "connect", "caRoots", "caLeaf", "secret", "secrets", "pkiCert"]
  }
  options {
    "driver.raw_exec.enable" = "0"
    "fingerprint.denylist"   = "env_aws,env_gce,env_azure,env_digitalocean"
  }
  # What the router's exec task sees: Nomad's default chroot, the Dynogrid binaries at
  # /opt/dynogrid/bin and the grid's CA at /etc/dynogrid/tls/ca.pem.
  chroot_env {
    "/bin"              = "/bin"
    "/etc"              = "/etc"
    "/lib"              = "/lib"
    "/lib32"            = "/lib32"
    "/lib64"            = "/lib64"
    "/run/resolvconf"   = "/run/resolvconf"
    "/sbin"             = "/sbin"
    "/usr"              = "/usr"
    "${DYNO_BIN_DIR}"   = "/opt/dynogrid/bin"
    "${TLS_DIR}/ca.pem" = "/etc/dynogrid/tls/ca.pem"
  }
}

tls {
  http                   = true
  rpc                    = true
  ca_file                = "${TLS_DIR}/ca.pem"
  cert_file              = "${TLS_DIR}/nomad.pem"
  key_file               = "${TLS_DIR}/nomad-key.pem"
  verify_server_hostname = true
  verify_https_client    = false
}

acl {
  enabled = true
}

consul {
  address = "127.0.0.1:8500"
  token   = "${NOMAD_CONSUL_TOKEN}"
}

plugin "raw_exec" {
  config {
    enabled = false
  }
}
