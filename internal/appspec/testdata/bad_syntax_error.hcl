app "shop" {
  process "web" {
    command = "thin start
  }
}
