app "shop" {
  process "web" {
    command = "thin start -p $PORT"
    count   = 8
    min     = 1
    max     = 5
  }

  process "worker" {
    command = "ruby worker.rb"
    min     = 4
    max     = 2
  }

  process "clock" {
    command = "ruby clock.rb"
    min     = -1
    max     = 101
  }

}
