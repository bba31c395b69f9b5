# Reading the ledger (`dyno usage` across apps): an operator's or a billing job's token.
key_prefix "dynogrid/meter/" {
  policy = "read"
}
