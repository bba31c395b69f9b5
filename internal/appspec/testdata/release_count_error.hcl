app "migrating" {
  process "web" {
    command = "thin start --port $PORT"
  }

  process "release" {
    command      = "rake db:migrate"
    count        = 1
    health_check = "/health"
  }
}
