app "Shop_1" {
  timeout = "forever"
  domains = ["localhost"]

  config {
    lower = "x"
    PORT  = "80"
  }

  process "web" {
    command      = ""
    count        = 500
    memory       = 8
    health_check = "health"
  }

  process "web" {
    command = "again"
  }

  process "worker" {
    health_check = "/"
    size         = "huge"
  }
}
