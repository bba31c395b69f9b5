app "shop" {
  source   = "app"
  procfile = "Procfile"

  process "worker" {
    count = 3
  }
}
