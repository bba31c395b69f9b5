app "shop" {
  process "web" {
    command = "thin start -p $PORT"
    min     = 2
    max     = 10
  }

  process "worker" {
    command = "ruby worker.rb"
    count   = 3
    max     = 3
  }

  process "clock" {
    command = "ruby clock.rb"
    min     = 1
  }
}
