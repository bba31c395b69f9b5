// Package meter meters dyno time and prices it.
//
// The package has three layers:
//
//   - a pure ledger core (Interval, Compute, Report) that turns running intervals into
//     dyno-seconds and cost, with exact integer arithmetic;
//   - a ledger of runs (Record) kept in a Store (Consul KV in production, memory in
//     tests), written idempotently by a Recorder from Nomad allocations;
//   - a daemon (Meter) that holds a Consul lock, reconciles the ledger from Nomad's
//     allocation history and then follows Nomad's event stream.
//
// Usage reads the ledger back and prices it; `dyno usage` calls it.
//
// The pricing rule: at every second, the first running dyno of an app is free and each
// further one costs the hourly price, prorated to the second. See docs/metering.md.
package meter
