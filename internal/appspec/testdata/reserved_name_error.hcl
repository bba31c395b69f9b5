app "addon-memcached-x" {
  process "web" { command = "thin start" }
}
