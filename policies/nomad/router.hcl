# The router lists the jobs of every namespace, to tell an app with no web dyno (H14) from
# a Host that names no app; reads each app's router log key, to let the holders of that
# key read the app's router lines; and lists and reads each app's HTTPS Variables (its
# certificates and its redirect setting, under dyno/https/), to serve them. With ACME on,
# it writes the certificates it orders for an app, and the HTTP-01 challenges under way,
# under dyno/https/acme/. It reads each allocation whose Consul service claims to be an
# app's dyno, to route only the dynos of the app's own job (router/provenance.go): an
# app's deploy token can name its job's services after another app. It reads no other
# variable and changes nothing else.
namespace "*" {
  capabilities = ["list-jobs", "read-job"]
  variables {
    path "dyno/router-logs" {
      capabilities = ["read"]
    }
    path "dyno/https/*" {
      capabilities = ["list", "read"]
    }
    path "dyno/https/acme/*" {
      capabilities = ["list", "read", "write", "destroy"]
    }
  }
}
