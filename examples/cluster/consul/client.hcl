# The Consul client agent of a client or edge host of a Dynogrid grid.
#
# ${...} names are set per host when the file is installed (envsubst; see
# examples/cluster/README.md). Keep the installed file readable by the consul user only.

disable_update_check = true
datacenter           = "${DATACENTER}"
node_name            = "${NODE_NAME}"
data_dir             = "${CONSUL_DATA_DIR}"
bind_addr            = "${BIND_ADDR}"

server         = false
retry_join     = [${RETRY_JOIN}]
retry_interval = "2s"

encrypt                 = "${CONSUL_GOSSIP_KEY}"
encrypt_verify_incoming = true
encrypt_verify_outgoing = true

# The local Nomad client and the router talk to this agent on loopback. Dynos run in
# network namespaces of their own and cannot reach the host's loopback.
addresses {
  http  = "127.0.0.1"
  https = "${BIND_ADDR}"
}
ports {
  http     = 8500
  https    = 8501
  dns      = -1
  grpc     = -1
  grpc_tls = -1
}

tls {
  defaults {
    ca_file         = "${TLS_DIR}/ca.pem"
    cert_file       = "${TLS_DIR}/consul.pem"
    key_file        = "${TLS_DIR}/consul-key.pem"
    verify_incoming = true
    verify_outgoing = true
  }
  internal_rpc {
    verify_server_hostname = true
  }
  https {
    verify_incoming = false
  }
}

# The agent token is made from policies/consul/consul-agent.hcl.
acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
  tokens {
    agent = "${CONSUL_AGENT_TOKEN}"
  }
}
