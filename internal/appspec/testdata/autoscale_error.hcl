app "shop" {
  process "web" {
    command = "thin start -p $PORT"
    min     = 2
    autoscale {
      min               = 0
      p95_queue_wait    = "fast"
      max_cost_per_hour = -1
    }
    autoscale {
      p95_queue_wait = "20s"
    }
  }
  process "worker" {
    command = "rake jobs:work"
    autoscale {
      p95_queue_wait    = "50ms"
      max_cost_per_hour = 1
    }
  }
}
