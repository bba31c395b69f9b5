# The Procfile's release line is the release phase, not a process type.
app "relapp" {
  source   = "relapp"
  procfile = "Procfile"
}
