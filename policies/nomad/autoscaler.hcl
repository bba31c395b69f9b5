# dyno-autoscaler finds the autoscale policies of every app's namespace through Nomad's
# scaling API, reads each app's formation and scales its web process type through the
# job scale API. It lists the jobs of an app's namespace (their IDs, meta and counts of
# allocations) to count the app's one-off dynos towards its cost cap; job meta holds no
# command nor config value (docs/security.md, "What a job list shows"). It can neither
# register nor read a job's definition, nor read variables, logs or allocations. The
# add-ons' namespace is closed to it.
namespace "*" {
  capabilities = ["list-jobs", "list-scaling-policies", "read-scaling-policy", "read-job-scaling", "scale-job"]
}
namespace "dyno-addons" {
  policy = "deny"
}
