# The Consul agent's own token: it registers its node and syncs the services and checks
# that others registered through it.
node_prefix "" {
  policy = "write"
}
service_prefix "" {
  policy = "read"
}
