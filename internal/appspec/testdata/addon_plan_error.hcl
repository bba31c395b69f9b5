app "shop" {
  process "web" { command = "thin start" }

  addon "postgres" { plan = "Standard 0" }
  addon "memcached" { plan = "mini" }
}
