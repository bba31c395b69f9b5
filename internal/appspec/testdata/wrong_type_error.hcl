app "shop" {
  process "web" {
    command = "x"
    count   = "two"
  }
  addon "postgres" { as = "Bad Name" }
  addon "postgres" {}
}
