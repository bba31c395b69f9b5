# A web service under Nomad's exec driver whose Consul check must turn passing: proves
# that the harness's Nomad client, Consul agent and service registration work together.
job "smoke" {
  datacenters = ["*"]
  type        = "service"

  group "web" {
    network {
      port "http" {}
    }

    service {
      name     = "smoke-web"
      port     = "http"
      provider = "consul"
      tags     = ["smoke"]

      check {
        type     = "http"
        path     = "/health"
        interval = "1s"
        timeout  = "1s"
      }
    }

    task "thin" {
      driver = "exec"

      config {
        command = "/usr/bin/thin"
        args    = ["start", "--rackup", "local/config.ru", "--address", "0.0.0.0", "--port", "${NOMAD_PORT_http}"]
      }

      template {
        destination = "local/config.ru"
        data        = <<-EOT
          run lambda { |env| [200, { "content-type" => "text/plain" }, ["ok from smoke\n"]] }
        EOT
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}
