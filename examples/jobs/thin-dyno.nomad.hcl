# The example Thin app (examples/thin) as two web dynos under the dyno driver, the way
# `dyno deploy` runs it. Pack the slug into the driver's slug_store_dir first, named by
# its sha256 (the driver takes no other file):
#
#   tar -C examples/thin -czf /tmp/hello.tar.gz .
#   sum=$(sha256sum /tmp/hello.tar.gz | cut -d' ' -f1)
#   mv /tmp/hello.tar.gz /var/lib/dynogrid/slug-store/$sum.tar.gz
#   nomad job run -var slug=/var/lib/dynogrid/slug-store/$sum.tar.gz -var sha256=$sum \
#       examples/jobs/thin-dyno.nomad.hcl

variable "slug" {
  type        = string
  description = "The slug (.tar.gz): <slug_store_dir>/<sha256>.tar.gz, or <slug_store_url><sha256>.tar.gz."
}

variable "sha256" {
  type        = string
  description = "The slug's sha256, hex."
}

job "hello" {
  datacenters = ["*"]
  meta = {
    "dyno.app"     = "hello"
    "dyno.process" = "web"
    "dyno.release" = "1"
  }

  group "web" {
    count = 2

    # A network namespace of its own, which the driver puts on its bridge; the dyno's
    # port is the host port's number.
    network {
      mode = "none"
      port "web" {
        to = -1
      }
    }

    task "web" {
      driver       = "dyno"
      kill_signal  = "SIGTERM"
      kill_timeout = "30s"

      config {
        command     = "/bin/sh"
        args        = ["-c", "thin start --rackup config.ru --address 0.0.0.0 --port $PORT --environment production"]
        slug        = var.slug
        slug_sha256 = var.sha256
      }

      env {
        PORT     = "${NOMAD_PORT_web}"
        DYNO     = "web.${NOMAD_ALLOC_INDEX}"
        RACK_ENV = "production"
      }

      resources {
        cores  = 1
        memory = 512
      }
    }
  }
}
