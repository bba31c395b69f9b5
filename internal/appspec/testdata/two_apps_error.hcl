app "one" {
  process "web" { command = "a" }
}
app "two" {
  process "web" { command = "b" }
}
