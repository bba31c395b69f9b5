app "shop" {
  process "web" {
    command = "thin start -p $PORT"
    autoscale {
      min               = 1
      max               = 20
      p95_queue_wait    = "50ms"
      max_cost_per_hour = 0.50
    }
  }
  process "worker" {
    command = "rake jobs:work"
  }
}
