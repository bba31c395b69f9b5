# dyno-autoscaler finds the routers of a cluster: the passing instances of service
# dyno-router and the nodes they run on. Read-only, and nothing else.
service "dyno-router" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
