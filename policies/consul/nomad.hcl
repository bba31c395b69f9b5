# The token Nomad agents use with Consul: they register and deregister the services and
# health checks of allocations (web dynos as <app>-web, add-on services) and read the
# agent and catalog to do so. No key/value, session or ACL rights.
agent_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
service_prefix "" {
  policy = "write"
}
