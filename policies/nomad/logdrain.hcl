# The log drain shipper (dyno-logdrain). In every app's namespace it lists the apps with
# drains and reads their drains, the app's router log key (to read its router lines from
# the routers) and its dynos' output; it writes only the drains' status. It reads no
# other variable, starts and stops nothing, and cannot exec into a dyno.
namespace "*" {
  capabilities = ["read-job", "read-logs"]
  variables {
    path "dyno/drains" {
      capabilities = ["list", "read"]
    }
    path "dyno/router-logs" {
      capabilities = ["read"]
    }
    path "dyno/drains-status" {
      capabilities = ["write", "read", "destroy"]
    }
  }
}
