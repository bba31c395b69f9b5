// Package bench holds dyno-router's routing benchmarks against HAProxy and the ideal
// single queue; see bench_test.go and docs/router.md. Run with
// `go test -run '^$' -bench . ./router/...`.
package bench
