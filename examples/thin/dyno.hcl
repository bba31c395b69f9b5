# The example app's spec: `dyno deploy examples/thin`.
app "hello" {
  procfile = "Procfile"

  process "web" {
    count        = 2
    memory       = 256
    health_check = "/health"
    # Each dyno runs on one core. "dedicated" (the default) reserves the core for it;
    # "shared" lets dynos share cores, so that a two-core laptop can run two web dynos,
    # the memcached add-on and one-off dynos at once.
    size = "shared"
  }

  # The release phase: once per release, before its dynos start, db/migrate.rb creates
  # the visit counter's table. It runs in a one-off dyno and has no dynos of its own.
  process "release" {
    command = "ruby db/migrate.rb"
    memory  = 128
    size    = "shared"
  }

  config {
    RACK_ENV = "production"
  }

  # DATABASE_URL: the page's visit counter.
  addon "postgres" {}

  # MEMCACHED_SERVERS (and credentials): a page fragment cached for 10 seconds.
  addon "memcached" {}
}
