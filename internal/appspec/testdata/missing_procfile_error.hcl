app "shop" {
  procfile = "Nope"
  process "web" {}
}
