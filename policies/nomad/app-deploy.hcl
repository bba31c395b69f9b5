# An app's deploy token: it manages the app APP and nothing else. The app's jobs (its
# releases and one-off dynos), its dynos' logs and exec sessions, its scaling and its
# variables (config, add-on attachments) all live in the app's own namespace, APP.
namespace "APP" {
  policy       = "write"
  capabilities = ["alloc-lifecycle", "alloc-exec", "read-logs", "scale-job"]
  variables {
    path "*" {
      capabilities = ["write", "read", "list", "destroy"]
    }
  }
}
