# A router in cluster mode (-cluster) also registers itself as the dyno-router service
# with a TTL check, holds a session tied to that check, and takes per-dyno locks and a
# membership key under dynogrid/router/. Given together with router.hcl.
service "dyno-router" {
  policy = "write"
}
session_prefix "" {
  policy = "write"
}
key_prefix "dynogrid/router/" {
  policy = "write"
}
