# The example app's spec: `dyno deploy examples/thin`.
app "hello" {
  procfile = "Procfile"

  process "web" {
    count        = 2
    memory       = 256
    health_check = "/health"
  }

  config {
    RACK_ENV = "production"
  }
}
