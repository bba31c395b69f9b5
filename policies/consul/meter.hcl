# The meter writes the ledger under dynogrid/meter/ and holds its writer lock there
# through a session.
key_prefix "dynogrid/meter/" {
  policy = "write"
}
session_prefix "" {
  policy = "write"
}
node_prefix "" {
  policy = "read"
}
