# A process "release" block is the release phase; it takes a command, memory and size.
app "migrating" {
  process "web" {
    command = "thin start --port $PORT"
  }

  process "release" {
    command = "rake db:migrate"
    memory  = 256
    size    = "shared"
  }
}
