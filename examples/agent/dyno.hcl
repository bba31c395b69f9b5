# A Nomad client (and, for one machine, server) that runs dynos with the dyno driver.
#
#   make build    # the driver needs cgo, libseccomp-dev and -tags seccomp
#   sudo build/bin/nomad agent -dev -config examples/agent/dyno.hcl \
#        -plugin-dir "$PWD/build/bin"
#
# Dynos need root (the driver builds namespaces, bind mounts and cgroups) and cgroups v1
# or v2 with the cpu, cpuset, memory and pids controllers.

disable_update_check = true

# ACLs on, default deny. Bootstrap once (`nomad acl bootstrap`) and give each component a
# token from the policy files in policies/ (docs/security.md).
acl {
  enabled = true
}

# The token Nomad uses with Consul, made from policies/consul/nomad.hcl. Keep this file
# readable by root only.
consul {
  token = "<secret of a token with policy dynogrid-nomad>"
}

client {
  enabled = true
  # Host ports (the router reaches web dynos on them) on loopback for a laptop; dynos
  # themselves get a network namespace of their own (cni_path, see docs/driver.md).
  network_interface = "lo"
}

plugin "nomad-driver-dyno" {
  config {
    # Unpacked slugs, one directory per sha256, shared by the dynos of a release.
    slug_dir = "/var/lib/dynogrid/slugs"
    # The grid's slug store on this machine, where `dyno deploy` packs slugs: a task's
    # slug must be a file of it (or of slug_store_url), named by its sha256.
    slug_store_dir = "/var/lib/dynogrid/slug-store"
    # Each dyno's private ./tmp and ./log, outside Nomad's allocation directory.
    dyno_dir = "/var/lib/dynogrid/dynos"
    # The unprivileged user every dyno runs as.
    user = "nobody"
    # Processes and threads per dyno (a task may lower or raise it with pids_limit).
    pids_limit = 256
    # Dynos' cgroups live under this cgroup (give each Nomad client of one machine its own).
    cgroup_parent = "dynogrid"
  }
}
