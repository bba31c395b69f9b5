# The router of a grid: one dyno-router on every edge host (Nomad node class "edge",
# nomad/edge.hcl), in cluster mode: the routers share each app's dynos through Consul
# (docs/router.md). Each follows its host's Consul agent on loopback.
#
#   nomad var put -namespace default nomad/jobs/dyno-router consul_token=<secret> nomad_token=<secret>
#   nomad job run -var-file=grid.vars examples/cluster/jobs/dyno-router.nomad.hcl
#
# Its tokens are made from policies/consul/router-cluster.hcl and policies/nomad/router.hcl,
# kept in the job's own Variable, which only this job's tasks may read.

variable "router_binary" {
  type    = string
  default = "/opt/dynogrid/bin/dyno-router"
}

variable "domain" {
  type        = string
  description = "Host <app>.<domain> routes to app."
}

variable "ca_file" {
  type        = string
  default     = "/etc/dynogrid/tls/ca.pem"
  description = "The grid's CA, to verify Nomad's HTTPS certificate."
}

variable "listen_port" {
  type    = number
  default = 8080
}

job "dyno-router" {
  type        = "system"
  datacenters = ["*"]

  constraint {
    attribute = "${node.class}"
    value     = "edge"
  }

  group "router" {
    network {
      mode = "host"
    }

    restart {
      attempts = 10
      interval = "5m"
      delay    = "2s"
      mode     = "delay"
    }

    task "router" {
      driver = "exec"

      config {
        command = var.router_binary
        args = [
          "-listen", "${attr.unique.network.ip-address}:${var.listen_port}",
          "-metrics-listen", "${attr.unique.network.ip-address}:9100",
          "-consul", "127.0.0.1:8500",
          "-nomad", "https://${attr.unique.network.ip-address}:4646",
          "-domain", var.domain,
          "-cluster",
          "-id", "${node.unique.name}",
        ]
      }

      env {
        NOMAD_CACERT = var.ca_file
      }

      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/dyno-router" }}
          NOMAD_TOKEN={{ .nomad_token }}
          CONSUL_HTTP_TOKEN={{ .consul_token }}
          {{ end }}
        EOT
        destination = "secrets/tokens.env"
        env         = true
        change_mode = "restart"
      }

      # A stopped router drains its in-flight and queued requests (-shutdown-timeout).
      kill_signal  = "SIGTERM"
      kill_timeout = "35s"

      resources {
        cpu    = 500
        memory = 256
      }
    }
  }
}
