# Bound to the app's job APP in namespace APP through the job's workload identity: its
# dynos render their environment from the app's own variables, nomad/jobs/APP/*, and read
# nothing else. Nomad itself grants a task its exact job path nomad/jobs/APP.
namespace "APP" {
  variables {
    path "nomad/jobs/APP/*" {
      capabilities = ["read", "list"]
    }
  }
}
