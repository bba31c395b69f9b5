app "migrating" {
  process "release" {
    command = "rake db:migrate"
  }
}
