app "shop" {
  domains = "shop.example.com"
  process "web" { command = "thin start" }
}
