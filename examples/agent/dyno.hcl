# A Nomad client (and, for one machine, server) that runs dynos with the dyno driver.
#
#   go build -o build/bin/ ./cmd/nomad-driver-dyno
#   sudo build/bin/nomad agent -dev -config examples/agent/dyno.hcl \
#        -plugin-dir "$PWD/build/bin"
#
# Dynos need root (the driver builds namespaces, bind mounts and cgroups) and cgroups v1
# or v2 with the cpu, cpuset, memory and pids controllers.

disable_update_check = true

client {
  enabled = true
  # Dynos use the host network and bind $PORT; on a laptop keep them on loopback.
  network_interface = "lo"
}

plugin "nomad-driver-dyno" {
  config {
    # Unpacked slugs, one directory per sha256, shared by the dynos of a release.
    slug_dir = "/var/lib/dynogrid/slugs"
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
