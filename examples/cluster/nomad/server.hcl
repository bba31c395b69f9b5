# A Nomad server of a Dynogrid grid. Run 3 (or 5) of them, one per server host, each
# beside a Consul server (consul/server.hcl).
#
# ${...} names are set per host when the file is installed (envsubst; see
# examples/cluster/README.md). Keep the installed file readable by root only: it holds
# the gossip key and a Consul token.

disable_update_check = true
region               = "global"
datacenter           = "${DATACENTER}"
name                 = "${NODE_NAME}"
data_dir             = "${NOMAD_DATA_DIR}"
bind_addr            = "${BIND_ADDR}"

server {
  enabled          = true
  bootstrap_expect = ${SERVERS}
  # Gossip between servers is encrypted with this 32-byte key (`nomad operator gossip
  # keyring generate`); every server has the same one.
  encrypt = "${NOMAD_GOSSIP_KEY}"
  # Every release and every scale is a version of the app's job; `dyno releases` and
  # `dyno rollback` find releases in this history.
  job_tracked_versions = 100
  # Raft timing for production: a lost leader is replaced in seconds.
  raft_multiplier = 1
  server_join {
    retry_join     = [${RETRY_JOIN}]
    retry_interval = "2s"
  }
}

client {
  enabled = false
}

# TLS on RPC (mutual, with server.<region>.nomad names checked) and on the HTTP API.
tls {
  http                   = true
  rpc                    = true
  ca_file                = "${TLS_DIR}/ca.pem"
  cert_file              = "${TLS_DIR}/nomad.pem"
  key_file               = "${TLS_DIR}/nomad-key.pem"
  verify_server_hostname = true
  # HTTP clients (the dyno CLI, the router, the meter) show a token, not a certificate.
  verify_https_client = false
}

# ACLs on. Bootstrap once (`nomad acl bootstrap`), then make each component's token
# from policies/nomad/ (docs/production.md).
acl {
  enabled = true
}

# This host's Consul agent, on loopback. The token is made from policies/consul/nomad.hcl.
consul {
  address = "127.0.0.1:8500"
  token   = "${NOMAD_CONSUL_TOKEN}"
}
