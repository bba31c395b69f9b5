app "shop" {
  process "web" {
    command = "thin start -p $PORT"
    count   = 30
    autoscale {
      min            = 1
      max            = 20
      p95_queue_wait = "20s"
    }
  }
}
