# A router follows the passing instances of every app's web service. Read-only.
service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
