app "shop" {
  domains = [
    "shop.example.com",
    "SHOP.example.com.",
    "https://shop.example.com/",
    42,
  ]
  process "web" { command = "thin start" }
}
