# The Nomad client of a client host of a Dynogrid grid: it runs dynos with the dyno
# driver, and the meter (Nomad's exec driver). The same file with NODE_CLASS=edge and no dyno driver is
# nomad/edge.hcl.
#
# ${...} names are set per host when the file is installed (envsubst; see
# examples/cluster/README.md). Keep the installed file readable by root only: it holds
# a Consul token and the slug store's password.

disable_update_check = true
region               = "global"
datacenter           = "${DATACENTER}"
name                 = "${NODE_NAME}"
data_dir             = "${NOMAD_DATA_DIR}"
plugin_dir           = "${PLUGIN_DIR}"
bind_addr            = "${BIND_ADDR}"

client {
  enabled    = true
  node_class = "dyno"
  servers    = [${NOMAD_SERVERS}]
  # Web dynos' host ports (the router reaches them there) are on this interface.
  network_interface = "${NETWORK_INTERFACE}"
  # Dynos get network namespaces of their own on the bridge "nomad" (CNI plugins from
  # Debian's containernetworking-plugins).
  cni_path      = "${CNI_PATH}"
  cgroup_parent = "${NOMAD_CGROUP_PARENT}"
  # Add-ons that Nomad runs (the memcached add-on's servers, its host_network setting)
  # listen on the addresses of this interface, not on network_interface's: dynos may
  # reach these (allowed_endpoints below), never the web dynos' host ports.
  host_network "addons" {
    interface = "${ADDON_INTERFACE}"
  }
  # Jobs take the dynamic ports (20000-32000) only: no job is given a static host port
  # (the agents', sshd's, any host service's), in any network mode. A job of an app in
  # Nomad's bridge mode would get one mapped into its network by the CNI portmap plugin
  # before the dyno driver could refuse its task.
  reserved {
    reserved_ports = "1-19999,32001-65535"
  }
  # Templates read Nomad Variables only (through their job's identity). The functions
  # that read Consul (with the Nomad agent's token: every service, node and address of
  # the grid) or Vault are off, so that an app's job cannot list them into its dyno; so
  # is file, which reads the job's artifacts, fetched from this host's network.
  template {
    function_denylist = ["plugin", "writeToFile", "file", "datacenters", "key", "keyExists", "keyOrDefault", "ls", "safeLs", "tree", "safeTree", "node", "nodes", "service", "services", "connect", "caRoots", "caLeaf", "secret", "secrets", "pkiCert"]
  }
  # No job fetches artifacts here: Nomad would fetch them from this host's network,
  # with the host's cloud credentials (s3::, gcs::), where a dyno may not reach, and an
  # app's job could read them into its dyno (a template's source). Every fetch fails.
  artifact {
    http_read_timeout = "1ns"
    http_max_size     = "1B"
    gcs_timeout       = "1ns"
    git_timeout       = "1ns"
    hg_timeout        = "1ns"
    s3_timeout        = "1ns"
  }
  options {
    "driver.raw_exec.enable" = "0"
    # No cloud metadata probes.
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
  # What the meter's exec task sees: Nomad's default chroot, the Dynogrid binaries at
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

# A dyno runs someone else's code: no raw_exec.
plugin "raw_exec" {
  config {
    enabled = false
  }
}

# The dyno driver (docs/driver.md). External plugins are configured by their binary's name.
plugin "nomad-driver-dyno" {
  config {
    # Unpacked slugs, one directory per sha256, shared by the dynos of a release.
    slug_dir = "${SLUG_DIR}"
    # Each dyno's private ./tmp and ./log.
    dyno_dir      = "${DYNO_DIR}"
    cgroup_parent = "${DYNO_CGROUP_PARENT}"
    # Dynos may not connect to the grid's networks, except to these TCP endpoints: the
    # add-ons' servers, such as the postgres add-on's database ("10.0.0.30:5432") and
    # the memcached add-on's on the clients' add-on network ("10.0.1.0/24:20000-32000",
    # Nomad's dynamic ports).
    allowed_endpoints = [${ALLOWED_ENDPOINTS}]
    # The grid's slug store (slug-store/nginx.conf): the driver downloads a slug from
    # there, checks its sha256 and keeps it in slug_dir. It sends these credentials to
    # that address only; an app's job names a slug, never credentials.
    slug_store_url           = "${SLUG_STORE_URL}"
    slug_store_username      = "${SLUG_STORE_READ_USER}"
    slug_store_password_file = "${SLUG_STORE_READ_PASSWORD_FILE}"
    slug_store_ca_file       = "${TLS_DIR}/ca.pem"
  }
}
