# The meter of a grid: records every dyno's running time into the ledger in Consul KV
# (see docs/metering.md). Two instances on separate hosts: one holds the ledger lock
# and writes, the other waits to take over.
#
#   nomad job run -var meter_binary=/usr/local/bin/dyno-meter examples/jobs/dyno-meter.nomad.hcl
#
# On a grid with TLS (examples/cluster, docs/production.md):
#
#   nomad job run -var meter_binary=/opt/dynogrid/bin/dyno-meter -var ca_file=/etc/dynogrid/tls/ca.pem \
#     -var 'nomad_addr=https://${attr.unique.network.ip-address}:4646' examples/jobs/dyno-meter.nomad.hcl
#
# The job carries no dyno.app meta, so the meter does not bill itself.
#
# ACLs are on: the meter's tokens, made from policies/nomad/meter.hcl and
# policies/consul/meter.hcl, are kept in the job's own Nomad Variable, which only this
# job's tasks may read, and reach the meter through its environment:
#
#   nomad var put nomad/jobs/dyno-meter nomad_token=<secret> consul_token=<secret>

variable "meter_binary" {
  type        = string
  default     = "/usr/local/bin/dyno-meter"
  description = "Path of the dyno-meter binary on every client host."
}

variable "instances" {
  type        = number
  default     = 2
  description = "How many meters to run; one writes, the others stand by."
}

variable "price" {
  type        = string
  default     = "0.05"
  description = "Price of a dyno-hour in dollars; the first dyno of each app is free."
}

variable "nomad_addr" {
  type    = string
  default = "http://127.0.0.1:4646"
}

variable "consul_addr" {
  type    = string
  default = "127.0.0.1:8500"
}

variable "ca_file" {
  type        = string
  default     = ""
  description = "The grid's CA on every client host, when Nomad's HTTP API is HTTPS (examples/cluster)."
}

job "dyno-meter" {
  type        = "service"
  datacenters = ["*"]

  group "meter" {
    count = var.instances

    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    restart {
      attempts = 10
      interval = "5m"
      delay    = "5s"
      mode     = "delay"
    }

    task "meter" {
      driver = "exec"

      config {
        command = var.meter_binary
        args = [
          "-nomad-addr", var.nomad_addr,
          "-consul-addr", var.consul_addr,
          "-price", var.price,
        ]
      }

      # Empty on a grid without TLS.
      env {
        NOMAD_CACERT = var.ca_file
      }

      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/dyno-meter" }}
          NOMAD_TOKEN={{ .nomad_token }}
          CONSUL_HTTP_TOKEN={{ .consul_token }}
          {{ end }}
        EOT
        destination = "secrets/tokens.env"
        env         = true
        change_mode = "restart"
      }

      kill_signal  = "SIGTERM"
      kill_timeout = "10s"

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
