# A router follows the passing instances of every app's web service (read-only), and
# keeps the record of which app holds each custom domain (router/domains.go).
service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
key_prefix "dynogrid/router/domains/" {
  policy = "write"
}
