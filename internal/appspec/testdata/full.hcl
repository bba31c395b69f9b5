app "shop" {
  source  = "app"
  domains = ["shop.example.com", "WWW.Shop.Example.com."]
  timeout = "45s"

  config {
    RACK_ENV  = "production"
    MAX_ITEMS = 12
    DEBUG     = false
  }

  process "web" {
    command      = "thin start --rackup config.ru --port $PORT"
    count        = 2
    memory       = 256
    health_check = "/health"
  }

  process "worker" {
    command = "ruby worker.rb"
    count   = 1
    size    = "shared"
  }

  addon "postgres" {
    plan = "hobby"
  }

  addon "memcached" {
    as = "cache"
  }
}
