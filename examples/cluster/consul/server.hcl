# A Consul server of a Dynogrid grid. Run 3 (or 5) of them, one per server host.
#
# ${...} names are set per host when the file is installed, with envsubst (Debian's
# gettext-base), e.g.:
#   NODE_NAME=server1 BIND_ADDR=10.0.0.11 ... envsubst < server.hcl > /etc/consul.d/consul.hcl
# examples/cluster/README.md lists every name. Keep the installed file readable by the
# consul user only: it holds the gossip key.

disable_update_check = true
datacenter           = "${DATACENTER}"
node_name            = "${NODE_NAME}"
data_dir             = "${CONSUL_DATA_DIR}"
bind_addr            = "${BIND_ADDR}"

server           = true
bootstrap_expect = ${SERVERS}
retry_join       = [${RETRY_JOIN}]
retry_interval   = "2s"

# Raft timing for production (the default, 5, is for development machines): a lost
# leader is replaced in seconds rather than tens of seconds.
performance {
  raft_multiplier = 1
}

# Gossip between agents is encrypted and authenticated with this 32-byte key
# (`consul keygen`); every agent of the grid has the same one.
encrypt                 = "${CONSUL_GOSSIP_KEY}"
encrypt_verify_incoming = true
encrypt_verify_outgoing = true

# The HTTP API: plain HTTP on loopback only (this host's own tools, `consul snapshot
# save`), HTTPS on the host's address for operators and the dyno CLI.
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

# TLS on server RPC (mutual: every agent shows a certificate of the grid's CA, and a
# server's names server.<datacenter>.consul) and on HTTPS.
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
  # HTTPS clients show a token, not a certificate.
  https {
    verify_incoming = false
  }
}

# ACLs on, default deny. Bootstrap once (`consul acl bootstrap`), then make each
# component's token from policies/consul/ (docs/production.md).
acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
}
