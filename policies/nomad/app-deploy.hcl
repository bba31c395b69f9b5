# An app's deploy token: it manages the app APP and nothing else. The app's jobs (its
# releases and one-off dynos), its dynos' logs and exec sessions, its scaling and its
# variables (config, add-on attachments) all live in the app's own namespace, APP.
#
# The capabilities are those of policy "write" but read-fs, dispatch-job (no dyno job is
# parameterized), the CSI volumes' and submit-recommendation. Nomad's file API reads an
# allocation's directories, where Nomad puts a job's artifacts, which it fetches from
# the host's network (the cloud's metadata service, the grid's own services); logs are
# read through read-logs.
namespace "APP" {
  capabilities = [
    "list-jobs", "parse-job", "read-job", "submit-job",
    "list-scaling-policies", "read-scaling-policy", "read-job-scaling", "scale-job",
    "read-logs", "alloc-exec", "alloc-lifecycle",
  ]
  variables {
    path "*" {
      capabilities = ["write", "read", "list", "destroy"]
    }
  }
}
