app "shop" {
  process "web" {
    command = "thin start"
    replicas = 2
  }
}
