# The memcached add-on runs one Nomad job per attachment in the dyno-addons namespace,
# with its credentials in a Nomad Variable of that job. It can touch nothing else: not
# apps' namespaces, not their variables.
namespace "dyno-addons" {
  capabilities = ["submit-job", "read-job", "list-jobs", "read-logs"]
  variables {
    path "nomad/jobs/addon-memcached-*" {
      capabilities = ["write", "read", "list", "destroy"]
    }
  }
}
